// Transports and tracing on mlp-bench at 64 concurrent clients, in one run: the Open Inference
// Protocol over gRPC vs REST with JSON tensors vs REST with the binary tensor extension (baseline: REST
// JSON), and REST JSON with OpenTelemetry tracing sampled at 100% and at 1% vs tracing off (baseline:
// the same server command without OTEL_*). Spans go to an OTLP/HTTP sink in this process that
// accepts and drops them, so exporting is measured but no collector is.
// Part of `npm run bench` when mlp-bench is measured (FERRY_BENCH_PROTOCOLS=0 skips it); alone:
// `node bench/dist/protocols.js [--quick]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FERRY_CLI, REPO_ROOT } from './paths.js';
import { ferryServeArgs, freePort, runJson, startNode, waitReady, type Child } from './processes.js';
import type { ProtocolLoadResult, ProtocolLoadSpec, Transport } from './protocols-load.js';
import { buildScratchRepo } from './scratch-repo.js';

export interface ProtocolRow extends ProtocolLoadResult {
  label: string;
  /** rps / the baseline row's rps. */
  ratio: number;
}

export interface ProtocolsBench {
  model: string;
  connections: number;
  durationSeconds: number;
  /** Rounds alternating between the rows; each row is its median round. */
  rounds: number;
  transports: ProtocolRow[];
  tracing: ProtocolRow[];
}

const PROTO = join(REPO_ROOT, 'packages/server/proto/grpc_predict_v2.proto');

async function startFerry(
  repoDir: string,
  env: Record<string, string>,
): Promise<{ child: Child; url: string; grpc: string }> {
  const port = await freePort();
  const grpcPort = await freePort();
  // startNode passes this process's environment on; the tracing variables are set around the spawn only.
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const child = startNode(
    'ferry (protocols)',
    FERRY_CLI,
    ferryServeArgs(repoDir, port, ['--grpc-port', String(grpcPort)]),
    { cwd: repoDir },
  );
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const url = `http://127.0.0.1:${port}`;
  await waitReady(child, url, 180_000);
  return { child, url, grpc: `127.0.0.1:${grpcPort}` };
}

export async function runProtocolsBench(
  opts: { quick: boolean; connections?: number },
  log: (line: string) => void,
): Promise<ProtocolsBench> {
  const connections = opts.connections ?? 64;
  const durationSeconds = opts.quick ? 4 : 10;
  const warmupSeconds = opts.quick ? 1 : 3;
  const repoDir = mkdtempSync(join(tmpdir(), 'ferry-bench-protocols-'));
  const [model] = buildScratchRepo(repoDir, ['mlp-bench']);
  // An OTLP/HTTP endpoint that drops what it gets: the exporter's work is measured, a collector's is not.
  let exported = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exported++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;
  const load = (transport: Transport, target: string) =>
    runJson<ProtocolLoadResult>(`load ${transport}`, 'protocols-load.js', {
      transport,
      target,
      model: 'mlp-bench',
      proto: PROTO,
      modelDir: model!.info.dir,
      connections,
      warmupSeconds,
      durationSeconds,
    } satisfies ProtocolLoadSpec);
  const rowOf = (label: string, r: ProtocolLoadResult, base?: ProtocolLoadResult): ProtocolRow => ({
    label,
    ...r,
    ratio: base ? r.rps / base.rps : 1,
  });
  // Three servers side by side (idle while another is measured): tracing off, on at 100%, on at 1%.
  // Rows are measured in rounds that alternate between them, and each row reports its median round,
  // so a fresh server's warm-up or a burst of other work on the machine falls on every row alike.
  const rounds = opts.quick ? 1 : 3;
  const servers: Array<Awaited<ReturnType<typeof startFerry>>> = [];
  try {
    const off = await startFerry(repoDir, {});
    servers.push(off);
    const tracedServer = async (ratio: string) => {
      const s = await startFerry(repoDir, {
        OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: ratio,
      });
      servers.push(s);
      return s;
    };
    const all = await tracedServer('1');
    const some = await tracedServer('0.01');
    const rows: Array<{ label: string; run: () => Promise<ProtocolLoadResult>; got: ProtocolLoadResult[] }> = [
      { label: 'REST JSON', run: () => load('rest-json', off.url), got: [] },
      { label: 'REST binary tensors', run: () => load('rest-binary', off.url), got: [] },
      { label: 'gRPC', run: () => load('grpc', off.grpc), got: [] },
      { label: 'REST JSON, tracing on, 100% sampled', run: () => load('rest-json', all.url), got: [] },
      { label: 'REST JSON, tracing on, 1% sampled', run: () => load('rest-json', some.url), got: [] },
    ];
    for (let round = 1; round <= rounds; round++) {
      for (const row of rows) {
        log(`protocols: round ${round}/${rounds}, ${row.label}, ${connections} clients`);
        row.got.push(await row.run());
      }
    }
    const median = (got: ProtocolLoadResult[]) => [...got].sort((x, y) => x.rps - y.rps)[got.length >> 1]!;
    const [json, binary, grpc, traced100, traced1] = rows.map((r) => median(r.got)) as [
      ProtocolLoadResult,
      ProtocolLoadResult,
      ProtocolLoadResult,
      ProtocolLoadResult,
      ProtocolLoadResult,
    ];
    if (exported === 0) throw new Error('the traced servers exported no spans: tracing was not on');
    return {
      model: 'mlp-bench',
      connections,
      durationSeconds,
      rounds,
      transports: [
        rowOf('REST JSON (baseline)', json),
        rowOf('REST binary tensor extension', binary, json),
        rowOf('gRPC (typed contents)', grpc, json),
      ],
      tracing: [
        rowOf('REST JSON, tracing off', json),
        rowOf('REST JSON, tracing on, 100% sampled', traced100, json),
        rowOf('REST JSON, tracing on, 1% sampled', traced1, json),
      ],
    };
  } finally {
    await Promise.all(servers.map((s) => s.child.stop()));
    sink.close();
    rmSync(repoDir, { recursive: true, force: true });
  }
}

export function formatProtocols(b: ProtocolsBench): string {
  const line = (r: ProtocolRow) =>
    `| ${r.label} | ${r.rps.toFixed(0)} | ${r.ratio.toFixed(2)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.errors} |`;
  const head = '| row | req/s | × baseline | p50 ms | p99 ms | errors |\n| --- | --- | --- | --- | --- | --- |';
  return [
    `${b.model}, ${b.connections} concurrent clients, ${b.durationSeconds} s per row, median of ${b.rounds} alternating rounds: transports (baseline REST JSON)`,
    head,
    ...b.transports.map(line),
    '',
    `${b.model}, ${b.connections} clients, REST JSON: tracing cost (baseline tracing off)`,
    head,
    ...b.tracing.map(line),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runProtocolsBench({ quick: process.argv.includes('--quick') }, (l) => process.stderr.write(`${l}\n`)).then(
    (b) => {
      process.stdout.write(`${formatProtocols(b)}\n${JSON.stringify(b)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`protocols bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
