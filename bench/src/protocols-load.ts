// The load generator of the protocols bench (protocols.ts), run as its own process: `connections`
// closed-loop clients send mlp-bench rows for `durationSeconds` after a warm-up, over one of three
// transports, and it prints one JSON line (req/s and latency percentiles).
//   grpc         @grpc/grpc-js ModelInfer, typed fp32_contents, one HTTP/2 channel (as Triton clients do)
//   rest-json    POST /v2/models/{m}/infer with JSON tensors, keep-alive HTTP/1.1, one socket per client
//   rest-binary  the same route with the binary tensor extension (raw float32 bytes after a JSON header)
// Usage: node protocols-load.js '<ProtocolLoadSpec JSON>'
import { Agent, request } from 'node:http';
import { credentials, loadPackageDefinition, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { summarize, type LatencySummary } from './stats.js';
import { instances, modelInfoAt } from './workloads.js';

export type Transport = 'grpc' | 'rest-json' | 'rest-binary';

export interface ProtocolLoadSpec {
  transport: Transport;
  /** http://host:port for REST, host:port for gRPC. */
  target: string;
  model: string;
  /** The .proto for gRPC. */
  proto: string;
  /** The model version folder: requests are its rows (reference rows or seeded synthetic ones), one per request. */
  modelDir: string;
  connections: number;
  /** gRPC: HTTP/2 connections the clients share, round-robin (default 1, as one Triton client has). */
  channels?: number;
  warmupSeconds: number;
  durationSeconds: number;
}

export interface ProtocolLoadResult extends LatencySummary {
  transport: Transport;
  connections: number;
  rps: number;
  ok: number;
  errors: number;
}

type Send = (row: number[]) => Promise<void>;
type Spec = ProtocolLoadSpec & { rows: number[][]; input: string };

function restSender(spec: Spec, binary: boolean): Send {
  const url = new URL(`${spec.target}/v2/models/${spec.model}/infer`);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  return (row) =>
    new Promise<void>((resolve, reject) => {
      let body: Buffer;
      const headers: Record<string, string | number> = {};
      if (binary) {
        const header = Buffer.from(
          JSON.stringify({
            inputs: [
              {
                name: spec.input,
                shape: [1, row.length],
                datatype: 'FP32',
                parameters: { binary_data_size: row.length * 4 },
              },
            ],
          }),
        );
        body = Buffer.concat([header, Buffer.from(new Float32Array(row).buffer)]);
        headers['content-type'] = 'application/octet-stream';
        headers['inference-header-content-length'] = header.length;
      } else {
        body = Buffer.from(
          JSON.stringify({ inputs: [{ name: spec.input, shape: [1, row.length], datatype: 'FP32', data: row }] }),
        );
        headers['content-type'] = 'application/json';
      }
      headers['content-length'] = body.length;
      const req = request(url, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
}

function grpcSender(spec: Spec): Send {
  const def = loadSync(spec.proto, { keepCase: true, longs: Number, defaults: true, arrays: true, oneofs: true });
  const pkg = loadPackageDefinition(def) as unknown as {
    inference: {
      GRPCInferenceService: new (
        a: string,
        c: ReturnType<typeof credentials.createInsecure>,
        o?: Record<string, number>,
      ) => Client;
    };
  };
  // A local subchannel pool per client: each gets its own HTTP/2 connection.
  const clients = Array.from(
    { length: spec.channels ?? 1 },
    () =>
      new pkg.inference.GRPCInferenceService(spec.target, credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }) as Client & Record<string, (req: unknown, md: Metadata, cb: (e: ServiceError | null) => void) => void>,
  );
  let n = 0;
  return (row) =>
    new Promise<void>((resolve, reject) =>
      clients[n++ % clients.length]!.ModelInfer!(
        {
          model_name: spec.model,
          inputs: [{ name: spec.input, datatype: 'FP32', shape: [1, row.length], contents: { fp32_contents: row } }],
        },
        new Metadata(),
        (e) => (e ? reject(e) : resolve()),
      ),
    );
}

/** `connections` loops, each sending its next request when the last is answered, until `until`. */
async function drive(send: Send, spec: Spec, seconds: number, record?: number[]): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let errors = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (performance.now() < until) {
        const row = spec.rows[next++ % spec.rows.length]!;
        const t0 = performance.now();
        try {
          await send(row);
          record?.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  return errors;
}

async function main(): Promise<void> {
  const given = JSON.parse(process.argv[2]!) as ProtocolLoadSpec;
  const info = modelInfoAt(given.model, given.modelDir);
  const input = info.manifest.inputs[0]!.name;
  const spec: Spec = { ...given, input, rows: instances(info, 256).map((r) => (r[input] as unknown[]).map(Number)) };
  const send = spec.transport === 'grpc' ? grpcSender(spec) : restSender(spec, spec.transport === 'rest-binary');
  await drive(send, spec, spec.warmupSeconds);
  const latencies: number[] = [];
  const t0 = performance.now();
  const errors = await drive(send, spec, spec.durationSeconds, latencies);
  const seconds = (performance.now() - t0) / 1000;
  const result: ProtocolLoadResult = {
    transport: spec.transport,
    connections: spec.connections,
    rps: latencies.length / seconds,
    ok: latencies.length,
    errors,
    ...summarize(latencies),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

void main();
