// OpenTelemetry end to end: a real OTLP/HTTP receiver started here, Ferry configured only through the
// standard OTEL_* variables, and the spans it exports decoded and checked: the caller's traceparent
// continued over REST and gRPC, the predict path's spans (validation, cache lookup, queue wait, batch
// with links, inference, postprocess), a job's run and callback in its submission's trace, and
// trace_id/span_id on log lines. Tracing is process-wide, and node --test runs each file in its own process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { credentials, loadPackageDefinition, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { startRepoServer, tinyClassifier, tinyLinearModel, type RepoServer } from '@ferry/test-kit';
import { OPEN_INFERENCE_PROTO, PROTO_LOADER_OPTIONS } from '../../grpc/index.js';
import { createLogger } from '../../app/create-server.js';
import { loadConfig } from '../../config/index.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
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
  const callbacks: Array<{ headers: IncomingHttpHeaders }> = [];
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
        callbacks.push({ headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hooks/`;
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
      { 'grpc.port': 0, 'jobs.webhooks.allow': [hookUrl], 'jobs.pollIntervalMs': 20 },
      logger,
    );
    const addr = await t.server.listen();
    url = addr.url;
    grpcPort = addr.grpcPort!;
  });
  after(async () => {
    await t?.close();
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
    const cb = await waitFor('the callback', () => callbacks[0]);
    assert.match(String(cb.headers.traceparent), new RegExp(`^00-${tp.traceId}-[0-9a-f]{16}-0[01]$`));
  });
});
