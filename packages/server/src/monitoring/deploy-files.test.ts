// The Prometheus and Grafana files in deploy/ are checked against what Ferry really exports, so a
// dashboard panel or an alert can never point at a metric that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startTestServer } from '../testing/test-server.js';
import { slowModel, tinyClassifier } from '../testing/fixture-models.js';

const deploy = (p: string) => fileURLToPath(new URL(`../../../../deploy/${p}`, import.meta.url));
const cls = tinyClassifier();

/** Every `ferry_*` metric an expression names, histogram suffixes folded onto the family. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(ferry_[a-z0-9_]+)/g)].map((m) => m[1]!);
}

test('Prometheus config scrapes /metrics and loads the alert rules, which are well formed', () => {
  const prom = parse(readFileSync(deploy('prometheus/prometheus.yml'), 'utf8'));
  assert.deepEqual(prom.rule_files, ['alerts.yml']);
  const job = prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'ferry');
  assert.equal(job.metrics_path, '/metrics');
  const rules = parse(readFileSync(deploy('prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: { rules: unknown[] }) => g.rules);
  assert.ok(rules.length >= 6);
  for (const r of rules) {
    assert.match(r.alert, /^Ferry[A-Za-z]+$/);
    assert.ok(r.expr && r.for && r.labels?.severity && r.annotations?.summary, JSON.stringify(r));
  }
});

test('the Grafana dashboard and provisioning are valid and every panel has a query', () => {
  const dash = JSON.parse(readFileSync(deploy('grafana/ferry-dashboard.json'), 'utf8'));
  assert.equal(typeof dash.schemaVersion, 'number');
  assert.deepEqual(dash.templating.list.map((v: { name: string }) => v.name), ['model', 'version']);
  assert.ok(dash.panels.length >= 12);
  for (const p of dash.panels) assert.ok(p.targets.length > 0 && p.targets.every((t: { expr: string }) => t.expr), p.title);
  const ds = parse(readFileSync(deploy('grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
  assert.equal(ds.datasources[0].type, 'prometheus');
  assert.ok(parse(readFileSync(deploy('grafana/provisioning/dashboards/ferry.yml'), 'utf8')).providers[0].options.path);
});

test('every metric the dashboard and the alerts name is one a running Ferry exports', async () => {
  const dash = JSON.parse(readFileSync(deploy('grafana/ferry-dashboard.json'), 'utf8'));
  const rules = parse(readFileSync(deploy('prometheus/alerts.yml'), 'utf8')).groups.flatMap((g: { rules: Array<{ expr: string }> }) => g.rules);
  const used = new Set([
    ...dash.panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.flatMap((t) => metricNames(t.expr))),
    ...dash.templating.list.flatMap((v: { definition: string }) => metricNames(v.definition)),
    ...rules.flatMap((r: { expr: string }) => metricNames(r.expr)),
  ]);
  const t = await startTestServer([{ name: 'cls', version: '1.0.0', files: cls }, { name: 'slow', version: '1.0.0', files: slowModel(50) }]);
  try {
    await t.server.app.inject({ method: 'POST', url: '/v1/models/cls/predict', payload: { instances: [cls.example] } });
    const text = (await t.server.app.inject({ url: '/metrics' })).body;
    // Families are declared by # TYPE lines even before a labelled series exists (drift, fallbacks, alerts).
    const families = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)/gm)].map((m) => m[1]!));
    const exported = new Set<string>();
    for (const f of families) {
      exported.add(f);
      for (const s of ['_bucket', '_sum', '_count']) exported.add(`${f}${s}`);
    }
    const missing = [...used].filter((n) => !exported.has(n));
    assert.deepEqual(missing, [], `named in deploy/ but not exported: ${missing.join(', ')}`);
    for (const n of ['ferry_drift_score', 'ferry_dataset_drift', 'ferry_cache_requests_total', 'ferry_batch_size_sum', 'ferry_request_duration_seconds_bucket']) assert.ok(used.has(n), `the dashboard shows ${n}`);
  } finally {
    await t.close();
  }
});
