// OpenTelemetry end to end: a real OTLP/HTTP receiver started here, Ferry configured only through the
// standard OTEL_* variables, and the spans it exports decoded and checked: the caller's traceparent
// continued over REST and gRPC, the predict path's spans (validation, cache lookup, queue wait, batch
// with links, inference, postprocess), a job's run and callback in its submission's trace,
// trace_id/span_id on log lines, exemplars on the latency histograms of the OpenMetrics /metrics, LLM
// upstream attempts as CLIENT spans whose traceparent reaches the upstream (a PROVIDER EMULATOR, the
// stand-in for a hosted LLM API), and alert webhooks in traces of their own. Tracing is process-wide,
// and node --test runs each file in its own process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { credentials, loadPackageDefinition, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  emulatorTokens,
  startLlmEmulator,
  startRepoServer,
  tinyClassifier,
  tinyLinearModel,
  type LlmEmulator,
  type RepoServer,
} from '@ferry/test-kit';
import { OPEN_INFERENCE_PROTO, PROTO_LOADER_OPTIONS } from '../../grpc/index.js';
import { createLogger } from '../../app/create-server.js';
import { loadConfig } from '../../config/index.js';
import { AlertManager, type AlertNotification } from '../../monitoring/alerting.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number };
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
  links?: Array<{ traceId: string; spanId: string }>;
}

/** An OTLP/HTTP trace receiver: collects what arrives at /v1/traces (JSON, as the HTTP exporter sends it). */
async function otlpReceiver(): Promise<{
  url: string;
  spans: OtlpSpan[];
  contentTypes: Set<string>;
  close(): Promise<void>;
}> {
  const spans: OtlpSpan[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v1/traces') return res.writeHead(404).end();
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: Array<{ resource: unknown; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
};
const traceparent = () => {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
};
const waitFor = async <T>(what: string, fn: () => T | undefined, ms = 30_000): Promise<T> => {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('OpenTelemetry over OTLP/HTTP', () => {
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let hook: Server;
  const callbacks: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  let emu: LlmEmulator;
  let hookUrl = '';
  let t: RepoServer;
  let url = '';
  let grpcPort = 0;
  const lines: Array<Record<string, unknown>> = [];
  before(async () => {
    receiver = await otlpReceiver();
    // Only the standard variables: Ferry has no tracing setting of its own.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_SERVICE_NAME = 'ferry-under-test';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
    hook = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        callbacks.push({ url: req.url ?? '', headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hooks/`;
    emu = await startLlmEmulator();
    const cls = tinyClassifier();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger(loadConfig({ env: {}, overrides: { 'log.level': 'debug' } }), sink);
    t = await startRepoServer(
      [
        { name: 'lin', version: '1.0.0', files: tinyLinearModel() },
        { name: 'cls', version: '1.0.0', files: { ...cls, manifest: { ...cls.manifest, cache: { enabled: true } } } },
      ],
      {},
      {
        'grpc.port': 0,
        'jobs.webhooks.allow': [hookUrl],
        'jobs.pollIntervalMs': 20,
        'llm.providers': {
          a: { kind: 'openai', baseUrl: emu.url, maxRetries: 1, retryBaseDelayMs: 1, retryMaxDelayMs: 20 },
        },
        'llm.routes': { chat: { tiers: { main: [{ provider: 'a', model: 'gpt-a' }] }, cache: { exact: false } } },
      },
      logger,
    );
    const addr = await t.server.listen();
    url = addr.url;
    grpcPort = addr.grpcPort!;
  });
  after(async () => {
    await t?.close();
    await emu?.close();
    await receiver?.close();
    await new Promise<void>((r) => hook?.close(() => r()));
  });

  test("REST: the caller's traceparent is continued; validation, queue wait, batch (linked), inference", async () => {
    const tp = traceparent();
    const r = await fetch(`${url}/v2/models/lin/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: tp.header },
      body: JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8], data: [1, 2, 3, 4, 5, 6, 7, 8] }],
      }),
    });
    assert.equal(r.status, 200);
    const server = await waitFor('the server span', () =>
      receiver.spans.find((s) => s.traceId === tp.traceId && s.name === 'POST /v2/models/:model/infer'),
    );
    assert.equal(server.parentSpanId, tp.spanId, 'child of the caller');
    assert.equal(server.kind, 2, 'SERVER');
    assert.equal(attr(server, 'http.response.status_code'), 200);
    assert.equal(attr(server, 'ferry.model'), 'lin');
    const inTrace = (name: string) => receiver.spans.find((s) => s.traceId === tp.traceId && s.name === name);
    const validate = await waitFor('ferry.validate', () => inTrace('ferry.validate'));
    assert.equal(validate.parentSpanId, server.spanId);
    const queue = await waitFor('ferry.queue_wait', () => inTrace('ferry.queue_wait'));
    assert.equal(queue.parentSpanId, server.spanId);
    const batch = await waitFor('the batch span linked to this request', () =>
      receiver.spans.find((s) => s.name === 'ferry.batch' && s.links?.some((l) => l.traceId === tp.traceId)),
    );
    assert.equal(batch.links!.find((l) => l.traceId === tp.traceId)!.spanId, server.spanId);
    assert.ok(Number(attr(batch, 'ferry.batch.rows')) >= 1);
    const inference = await waitFor('ferry.inference', () =>
      receiver.spans.find((s) => s.name === 'ferry.inference' && s.parentSpanId === batch.spanId),
    );
    assert.equal(inference.traceId, batch.traceId);
    assert.ok([...receiver.contentTypes].some((c) => c.startsWith('application/json')));
  });

  test('v1 predict: cache lookup and postprocess spans; log lines carry trace_id and span_id', async () => {
    const tp = traceparent();
    const r = await fetch(`${url}/v1/models/cls/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: tp.header },
      body: JSON.stringify({ instances: [{ amount: 12, items: 1, member: false, color: 'red' }] }),
    });
    assert.equal(r.status, 200, await r.text());
    for (const name of ['ferry.validate', 'ferry.cache_lookup', 'ferry.postprocess'])
      await waitFor(name, () => receiver.spans.find((s) => s.traceId === tp.traceId && s.name === name));
    const server = receiver.spans.find((s) => s.traceId === tp.traceId && s.kind === 2)!;
    const line = await waitFor('a log line in the trace', () => lines.find((l) => l.trace_id === tp.traceId));
    assert.match(String(line.span_id), /^[0-9a-f]{16}$/);
    assert.equal(line.span_id, server.spanId);
  });

  test('gRPC: traceparent metadata is continued', async () => {
    const pkg = loadPackageDefinition(loadSync(OPEN_INFERENCE_PROTO, PROTO_LOADER_OPTIONS)) as unknown as {
      inference: { GRPCInferenceService: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => Client };
    };
    const client = new pkg.inference.GRPCInferenceService(
      `127.0.0.1:${grpcPort}`,
      credentials.createInsecure(),
    ) as Client & Record<string, (req: unknown, md: Metadata, cb: (e: ServiceError | null) => void) => void>;
    const tp = traceparent();
    const md = new Metadata();
    md.set('traceparent', tp.header);
    await new Promise<void>((resolve, reject) =>
      client.ModelInfer!(
        {
          model_name: 'lin',
          inputs: [
            { name: 'x', datatype: 'FP32', shape: [1, 8], contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7, 8] } },
          ],
        },
        md,
        (e) => (e ? reject(e) : resolve()),
      ),
    );
    client.close();
    const server = await waitFor('the gRPC server span', () =>
      receiver.spans.find((s) => s.traceId === tp.traceId && s.name === 'inference.GRPCInferenceService/ModelInfer'),
    );
    assert.equal(server.parentSpanId, tp.spanId);
    assert.equal(attr(server, 'rpc.grpc.status_code'), 0);
    await waitFor('ferry.validate under gRPC', () =>
      receiver.spans.find((s) => s.name === 'ferry.validate' && s.parentSpanId === server.spanId),
    );
  });

  test("jobs: the run joins the submission's trace, and the callback carries it on", async () => {
    const tp = traceparent();
    const r = await fetch(`${url}/v1/models/cls/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: tp.header },
      body: JSON.stringify({
        instances: [{ amount: 50, items: 2, member: true, color: 'blue' }],
        callbackUrl: `${hookUrl}x`,
      }),
    });
    const job = (await r.json()) as { id: string };
    assert.equal(r.status, 202, JSON.stringify(job));
    const run = await waitFor('ferry.job.run in the submission trace', () =>
      receiver.spans.find((s) => s.traceId === tp.traceId && s.name === 'ferry.job.run'),
    );
    assert.equal(attr(run, 'ferry.job.id'), job.id);
    const cb = await waitFor('the callback', () => callbacks.find((c) => c.url.endsWith('/x')));
    assert.match(String(cb.headers.traceparent), new RegExp(`^00-${tp.traceId}-[0-9a-f]{16}-0[01]$`));
  });

  test('/metrics: OpenMetrics when Accept asks, with the sampled request as exemplar; Prometheus text as before', async () => {
    const infer = (header: string) =>
      fetch(`${url}/v2/models/lin/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: header },
        body: JSON.stringify({
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 8], data: [8, 7, 6, 5, 4, 3, 2, 1] }],
        }),
      });
    const tp = traceparent();
    assert.equal((await infer(tp.header)).status, 200);
    const server = await waitFor('the server span', () =>
      receiver.spans.find((s) => s.traceId === tp.traceId && s.kind === 2),
    );
    // Not sampled (flags 00, parent-based sampler): it must not become an exemplar.
    const unsampled = traceparent();
    assert.equal((await infer(unsampled.header.replace(/-01$/, '-00'))).status, 200);

    const om = await fetch(`${url}/metrics`, {
      headers: {
        accept:
          'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      },
    });
    assert.equal(om.status, 200);
    assert.match(String(om.headers.get('content-type')), /^application\/openmetrics-text; version=1\.0\.0/);
    const omText = await om.text();
    assert.ok(omText.endsWith('# EOF\n'), 'OpenMetrics ends with # EOF');
    // name{labels} value # {trace_id="…",span_id="…"} exemplar-value timestamp
    const exemplars = [
      ...omText.matchAll(
        /^(\w+)\{([^}]*)\} \S+ # \{trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"\} (\S+) (\S+)$/gm,
      ),
    ].map((m) => ({ name: m[1]!, labels: m[2]!, traceId: m[3]!, spanId: m[4]!, value: Number(m[5]) }));
    const requestExemplar = exemplars.find(
      (e) => e.name === 'ferry_request_duration_seconds_bucket' && e.traceId === tp.traceId,
    );
    assert.ok(requestExemplar, `an exemplar of ${tp.traceId} in:\n${exemplars.map((e) => e.traceId).join('\n')}`);
    assert.match(requestExemplar.labels, /model="lin"/);
    assert.equal(requestExemplar.spanId, server.spanId, "the request's server span");
    assert.ok(requestExemplar.value > 0 && requestExemplar.value < 60);
    const inference = exemplars.find(
      (e) => e.name === 'ferry_inference_duration_seconds_bucket' && /model="lin"/.test(e.labels),
    );
    assert.ok(inference, 'the inference histogram carries exemplars too');
    await waitFor('the trace an inference exemplar names', () =>
      receiver.spans.some((s) => s.traceId === inference.traceId && s.spanId === inference.spanId),
    );
    assert.ok(!exemplars.some((e) => e.traceId === unsampled.traceId), 'no exemplar of an unsampled request');
    assert.match(omText, /^ferry_requests_total\{/m);
    assert.match(omText, /^# TYPE ferry_requests counter$/m);

    const prom = await fetch(`${url}/metrics`, { headers: { accept: 'text/plain' } });
    assert.equal(prom.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const promText = await prom.text();
    assert.ok(!promText.includes(' # {'), 'no exemplars in the Prometheus text format');
    assert.ok(!promText.includes('# EOF'));
    // The OpenMetrics scrape renamed nothing: counters keep their Prometheus names.
    assert.match(promText, /^# TYPE ferry_requests_total counter$/m);
    assert.match(promText, /^ferry_request_duration_seconds_bucket\{le="\+Inf",route="[^"]+",model="lin"/m);
    const plain = await fetch(`${url}/metrics`);
    assert.equal(plain.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  });

  test('LLM gateway: a CLIENT span per upstream attempt in the request trace; the upstream gets its traceparent', async () => {
    const tp = traceparent();
    const before = emu.requests.length;
    emu.faults.push({ kind: 'status', status: 503 }); // the first attempt fails and is retried
    const r = await fetch(`${url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: tp.header },
      body: JSON.stringify({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'hello there' }] }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    const sent = emu.requests.slice(before);
    assert.equal(sent.length, 2, 'one retry');
    const attempts = await waitFor('two attempt spans', () => {
      const a = receiver.spans.filter((s) => s.traceId === tp.traceId && s.name === 'chat gpt-a');
      return a.length === 2
        ? a.sort((x, y) => Number(attr(x, 'ferry.llm.attempt')) - Number(attr(y, 'ferry.llm.attempt')))
        : undefined;
    });
    const server = receiver.spans.find((s) => s.traceId === tp.traceId && s.kind === 2)!;
    assert.equal(server.name, 'POST /openai/v1/chat/completions');
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    for (const [i, a] of attempts.entries()) {
      assert.equal(a.kind, 3, 'CLIENT');
      let up = a;
      while (up.parentSpanId && up.spanId !== server.spanId) up = byId.get(up.parentSpanId)!;
      assert.equal(up.spanId, server.spanId, 'under the gateway request span');
      assert.equal(
        sent[i]!.headers.traceparent,
        `00-${tp.traceId}-${a.spanId}-01`,
        'the upstream got the attempt span',
      );
      assert.equal(attr(a, 'ferry.llm.attempt'), i + 1);
      assert.equal(attr(a, 'ferry.llm.retries'), i);
      assert.equal(attr(a, 'ferry.llm.provider'), 'a');
      assert.equal(attr(a, 'gen_ai.operation.name'), 'chat');
      assert.equal(attr(a, 'gen_ai.provider.name'), 'openai');
      assert.equal(attr(a, 'gen_ai.request.model'), 'gpt-a');
      assert.equal(attr(a, 'gen_ai.request.max_tokens'), 16);
      assert.equal(attr(a, 'server.address'), '127.0.0.1');
    }
    const [failed, ok] = attempts as [OtlpSpan, OtlpSpan];
    assert.equal(failed.status?.code, 2, 'ERROR');
    assert.equal(attr(failed, 'error.type'), '503');
    assert.equal(attr(failed, 'http.response.status_code'), 503);
    assert.notEqual(ok.status?.code, 2);
    assert.equal(attr(ok, 'gen_ai.response.model'), 'gpt-a');
    assert.deepEqual(attr(ok, 'gen_ai.response.finish_reasons'), { values: [{ stringValue: 'stop' }] });
    assert.equal(attr(ok, 'gen_ai.usage.input_tokens'), emulatorTokens('hello there'));
    assert.equal(attr(ok, 'gen_ai.usage.output_tokens'), emulatorTokens('reply: hello there'));
  });

  test('alerts: each notification is delivered in a trace of its own, its traceparent on the webhook', async () => {
    const delivered: AlertNotification[] = [];
    const alerts = new AlertManager(
      {
        webhookUrl: `${hookUrl}alert`,
        secret: 'shh',
        previousSecrets: [],
        intervalSeconds: 60,
        timeoutMs: 2000,
        maxAttempts: 2,
        backoffMs: 10,
        maxQueue: 10,
        rules: [{ name: 'errors', kind: 'error-rate', threshold: 0.1 }],
      },
      { onDelivered: (n) => delivered.push(n) },
    );
    try {
      assert.equal(alerts.evaluate([{ model: 'lin', version: '1.0.0', errorRate: 0.5 }]).length, 1);
      await waitFor('the delivery', () => delivered[0]);
      const hook = callbacks.find((c) => c.url.endsWith('/alert'))!;
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(hook.headers.traceparent));
      assert.ok(m, `traceparent: ${hook.headers.traceparent}`);
      const span = await waitFor('ferry.alert.deliver', () =>
        receiver.spans.find((s) => s.name === 'ferry.alert.deliver' && s.traceId === m[1]),
      );
      assert.equal(span.spanId, m[2], 'the webhook names the delivery span');
      assert.ok(!span.parentSpanId, 'a root span');
      assert.equal(span.kind, 3, 'CLIENT');
      assert.equal(attr(span, 'ferry.alert.rule'), 'errors');
      assert.equal(attr(span, 'ferry.alert.status'), 'firing');
      assert.equal(attr(span, 'ferry.model'), 'lin');
      assert.equal(attr(span, 'ferry.alert.attempts'), 1);
      assert.equal(attr(span, 'http.response.status_code'), 204);
      assert.match(String(hook.headers['webhook-signature']), /^v1,/, 'still signed');
    } finally {
      alerts.close();
    }
  });
});
