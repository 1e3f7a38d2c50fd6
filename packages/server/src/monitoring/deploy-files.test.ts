// The Prometheus and Grafana files in deploy/ are checked against what Ferry really exports, so a
// dashboard panel or an alert can never point at a metric (or a label) that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startTestServer, slowModel, tinyClassifier } from '@ferry/test-kit';

const deploy = (p: string) => fileURLToPath(new URL(`../../../../deploy/${p}`, import.meta.url));
const cls = tinyClassifier();

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  title: string;
  targets: Target[];
  datasource?: { type: string; uid: string };
  gridPos?: object;
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  definition?: string;
  datasource?: { uid: string };
}
interface Dashboard {
  __inputs?: unknown;
  schemaVersion: number;
  templating: { list: Variable[] };
  panels: Panel[];
}

const rules = (): Rule[] =>
  parse(readFileSync(deploy('prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: { rules: Rule[] }) => g.rules);
const dashboard = (): Dashboard => JSON.parse(readFileSync(deploy('grafana/ferry-dashboard.json'), 'utf8'));

/** Every PromQL expression in deploy/: alert rules, panel queries, template variable queries. */
function allExpressions(): Array<{ where: string; expr: string }> {
  const d = dashboard();
  return [
    ...rules().map((r) => ({ where: `alerts.yml ${r.alert}`, expr: r.expr })),
    ...d.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))),
    ...d.templating.list.filter((v) => v.definition).map((v) => ({ where: `variable ${v.name}`, expr: v.definition! })),
  ];
}

/** Every `ferry_*` series name an expression uses, as written (histogram suffixes included). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(ferry_[a-z0-9_]+)/g)].map((m) => m[1]!);
}

/** Label names in the selectors that follow a metric name: `ferry_x{a="1",b=~"2"}` → [ferry_x, [a, b]]. */
function selectorLabels(expr: string): Array<[string, string[]]> {
  return [...expr.matchAll(/\b(ferry_[a-z0-9_]+)\{([^}]*)\}/g)].map((m) => [
    m[1]!,
    [...m[2]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  ]);
}

/** Cheap syntax guard (there is no PromQL parser among our dependencies): brackets balance and quotes close. */
function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  if (unquoted.replace(/""/g, '').includes('"')) return false; // a quote left open
  for (const ch of unquoted) {
    if ('([{'.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

/** What a scrape exposes: family name → type, and the series names each family really produces. */
interface Exported {
  series: Set<string>;
  labels: Map<string, Set<string>>;
}

/**
 * The problems with `exprs` against what Ferry exports: unknown series (a `_bucket` only exists for a
 * histogram, `_sum`/`_count` for a histogram or summary) and selector labels the metric does not have.
 */
function problems(exprs: Array<{ where: string; expr: string }>, exported: Exported): string[] {
  const out: string[] = [];
  for (const { where, expr } of exprs) {
    for (const n of metricNames(expr)) if (!exported.series.has(n)) out.push(`${where}: ${n} is not exported`);
    for (const [n, labels] of selectorLabels(expr)) {
      const known = exported.labels.get(n);
      if (!known) continue; // already reported above
      for (const l of labels) if (!known.has(l)) out.push(`${where}: ${n} has no label "${l}"`);
    }
  }
  return out;
}

test('Prometheus config scrapes /metrics and loads the alert rules, which are well formed', () => {
  const prom = parse(readFileSync(deploy('prometheus/prometheus.yml'), 'utf8'));
  assert.deepEqual(prom.rule_files, ['alerts.yml']);
  const job = prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'ferry');
  assert.equal(job.metrics_path, '/metrics');
  assert.deepEqual(job.static_configs[0].targets, ['ferry:8080']);
  const all = rules();
  assert.ok(all.length >= 8);
  assert.equal(new Set(all.map((r) => r.alert)).size, all.length, 'alert names are unique');
  for (const r of all) {
    assert.match(r.alert, /^Ferry[A-Za-z]+$/);
    assert.ok(r.expr && r.labels?.severity && r.annotations?.summary, JSON.stringify(r));
    assert.match(r.for, /^\d+[smhd]$/, `${r.alert}: for is a Prometheus duration`);
    assert.ok(['info', 'warning', 'critical'].includes(r.labels.severity), `${r.alert}: severity ${r.labels.severity}`);
    assert.ok(balanced(r.expr), `${r.alert}: unbalanced expression`);
  }
  // The conditions the webhook alerts cover, and the ones only Prometheus can see.
  const exprs = all.map((r) => r.expr).join('\n');
  for (const n of [
    'ferry_request_duration_seconds_bucket',
    'ferry_requests_total',
    'ferry_fallbacks_total',
    'ferry_shed_requests_total',
    'ferry_breaker_state',
    'ferry_drift_detected',
    'ferry_dataset_drift',
    'ferry_alerts_total',
  ]) {
    assert.ok(exprs.includes(n), `an alert rule uses ${n}`);
  }
});

test('the Grafana dashboard and provisioning are valid and every panel has a query on the datasource variable', () => {
  const dash = dashboard();
  assert.equal(dash.schemaVersion, 39);
  // __inputs is resolved only by Grafana's import dialog; a provisioned dashboard needs a datasource variable.
  assert.equal(dash.__inputs, undefined);
  assert.deepEqual(
    dash.templating.list.map((v) => [v.name, v.type]),
    [
      ['DS_PROMETHEUS', 'datasource'],
      ['model', 'query'],
      ['version', 'query'],
    ],
  );
  assert.equal(dash.templating.list[0]!.query, 'prometheus');
  for (const v of dash.templating.list.slice(1)) assert.equal(v.datasource?.uid, '${DS_PROMETHEUS}', v.name);
  assert.ok(dash.panels.length >= 12);
  assert.equal(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, 'panel ids are unique');
  for (const p of dash.panels) {
    assert.ok(p.gridPos, `${p.title}: gridPos`);
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: panel datasource`);
    assert.ok(p.targets.length > 0, `${p.title}: has targets`);
    assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length, `${p.title}: refIds are unique`);
    for (const t of p.targets) {
      assert.ok(t.expr && balanced(t.expr), `${p.title} ${t.refId}: ${t.expr}`);
      assert.equal(t.datasource?.uid, '${DS_PROMETHEUS}', `${p.title} ${t.refId}: target datasource`);
    }
  }
  const ds = parse(readFileSync(deploy('grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
  assert.equal(ds.datasources[0].type, 'prometheus');
  assert.ok(parse(readFileSync(deploy('grafana/provisioning/dashboards/ferry.yml'), 'utf8')).providers[0].options.path);
});

test('every metric and label the dashboard and the alerts name is one a running Ferry exports', async () => {
  const exprs = allExpressions();
  const used = new Set(exprs.flatMap((e) => metricNames(e.expr)));
  const t = await startTestServer([
    { name: 'cls', version: '1.0.0', files: cls },
    { name: 'slow', version: '1.0.0', files: slowModel(50) },
  ]);
  try {
    for (let i = 0; i < 2; i++) {
      const res = await t.server.app.inject({
        method: 'POST',
        url: '/v1/models/cls/predict',
        payload: { instances: [cls.example] },
      });
      assert.equal(res.statusCode, 200, res.body);
    }
    const text = (await t.server.app.inject({ url: '/metrics' })).body;
    // Families are declared by # TYPE lines even before a labelled series exists (drift, fallbacks,
    // alerts), so the drift families (ferry_drift_score, ferry_drift_detected, ferry_dataset_drift)
    // need no allow-list: they are declared in metrics.ts and checked like every other name.
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\w+)/gm)].map((m) => [m[1]!, m[2]!] as const));
    const suffixes: Record<string, string[]> = {
      histogram: ['_bucket', '_sum', '_count'],
      summary: ['_sum', '_count'],
    };
    // Labels as declared by each metric, plus those Prometheus or the exposition add.
    const declared = new Map(
      t.server.metrics.registry
        .getMetricsAsArray()
        .map((m) => [m.name, (m as unknown as { labelNames?: string[] }).labelNames ?? []] as const),
    );
    const exported: Exported = { series: new Set(), labels: new Map() };
    for (const [family, type] of types) {
      const base = [...(declared.get(family) ?? []), 'job', 'instance'];
      for (const s of ['', ...(suffixes[type] ?? [])]) {
        exported.series.add(`${family}${s}`);
        exported.labels.set(
          `${family}${s}`,
          new Set(s === '_bucket' ? [...base, 'le'] : type === 'summary' && s === '' ? [...base, 'quantile'] : base),
        );
      }
    }
    for (const n of [
      'ferry_drift_score',
      'ferry_drift_detected',
      'ferry_dataset_drift',
      'ferry_request_duration_seconds',
      'ferry_alerts_total',
    ])
      assert.ok(types.has(n), `/metrics declares ${n}`);

    // The check itself can fail: unknown names, suffixes on the wrong type and unknown labels are caught.
    assert.deepEqual(
      problems(
        [
          {
            where: 'control',
            expr: 'rate(ferry_bogus_total[5m]) + ferry_model_ready_bucket + ferry_requests_total{stauts="500"} + ferry_request_duration_seconds_bucket{le="0.1"}',
          },
        ],
        exported,
      ),
      [
        'control: ferry_bogus_total is not exported',
        'control: ferry_model_ready_bucket is not exported',
        'control: ferry_requests_total has no label "stauts"',
      ],
    );

    assert.deepEqual(problems(exprs, exported), [], 'every name and label in deploy/ is exported');
    for (const n of [
      'ferry_drift_score',
      'ferry_dataset_drift',
      'ferry_cache_requests_total',
      'ferry_batch_size_sum',
      'ferry_request_duration_seconds_bucket',
      'ferry_queue_depth',
      'ferry_breaker_state',
      'ferry_fallbacks_total',
      'ferry_model_load_seconds',
    ]) {
      assert.ok(used.has(n), `the dashboard or the alerts show ${n}`);
    }
    assert.ok(
      [...used].some((n) => n.startsWith('ferry_nodejs_eventloop_lag')),
      'the dashboard shows event-loop lag',
    );
  } finally {
    await t.close();
  }
});
