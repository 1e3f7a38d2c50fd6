// The health lane's HTTP listener: GET/HEAD /healthz and /readyz answered from a snapshot, nothing
// else. A bare node:http server on purpose: it runs where the serving loop is not (a worker thread,
// or the cluster primary) and has no other routes, plugins or hooks that could slow a probe.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { FerryError, toProblem, type ErrorCode } from '../../errors.js';
import { answerProbe, type HealthSnapshot } from './state.js';

export interface HealthListenerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Liveness fails past this heartbeat age (`server.livenessMaxStallMs`). */
  maxStallMs: number;
  read(): HealthSnapshot;
}

function send(res: ServerResponse, status: number, type: string, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

function problem(res: ServerResponse, code: ErrorCode, detail: string, path: string, head: boolean): void {
  send(
    res,
    new FerryError(code).status,
    'application/problem+json',
    toProblem(new FerryError(code, { detail }), path),
    head,
  );
}

/** Starts the listener; resolves with the server and its bound port. */
export async function startHealthListener(opts: HealthListenerOptions): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const head = req.method === 'HEAD';
    if (path !== '/healthz' && path !== '/readyz') {
      problem(res, 'route-not-found', `the health port serves only /healthz and /readyz, not ${path}`, path, head);
      return;
    }
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      problem(res, 'method-not-allowed', `${path} answers GET and HEAD, not ${req.method}`, path, false);
      return;
    }
    const a = answerProbe(path, opts.read(), Date.now(), opts.maxStallMs);
    send(res, a.status, 'application/json; charset=utf-8', a.body, head);
  });
  // Probes are tiny; a probe client that stops sending must not hold a socket for long.
  server.headersTimeout = 5000;
  server.requestTimeout = 5000;
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : opts.port };
}
