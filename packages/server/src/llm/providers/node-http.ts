// The upstream HTTP client: node:http / node:https requests over keep-alive agents, returning the small
// part of a fetch Response that HttpAttempt reads (status, a header, the text, the body's chunks). Not
// `fetch`: per proxied request, fetch's WHATWG machinery (Request and Headers objects, an AbortSignal made
// transferable, a ReadableStream per body) cost about three times the CPU of node:http in the gateway
// bench (`npm run bench:llm`, bare proxies side by side: ~1.3 ms vs ~0.45 ms per request on a loaded
// 2-core machine), which capped the gateway at a third of the upstream's throughput.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/** What HttpAttempt reads of an upstream's answer (a subset of fetch's Response). */
export interface UpstreamResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** The whole body as UTF-8 text (rejects when the connection breaks first). */
  text(): Promise<string>;
  /** The body's chunks as they arrive; `cancel` drops the connection. */
  readonly body: (AsyncIterable<Uint8Array> & { cancel(): Promise<void> }) | null;
}

// One pool of kept-alive connections per scheme for every provider (each provider bounds its own
// concurrency with maxConcurrent); LIFO reuse keeps the warmest sockets busy.
const agents = {
  http: new HttpAgent({ keepAlive: true, scheduling: 'lifo' }),
  https: new HttpsAgent({ keepAlive: true, scheduling: 'lifo' }),
};

// Providers with a `caFile`: one kept-alive HTTPS pool per file, trusting its CAs and the system's.
const caAgents = new Map<string, HttpsAgent>();

/**
 * The HTTPS pool for upstreams whose certificates chain to the CAs in `caFile` (PEM). Reads the file on
 * first use: the gateway calls it when it builds the provider, so a missing or empty file fails the
 * start, not a request.
 */
export function caAgent(caFile: string): HttpsAgent {
  let a = caAgents.get(caFile);
  if (!a) {
    const pem = readFileSync(caFile, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${caFile} holds no PEM certificate`);
    a = new HttpsAgent({ keepAlive: true, scheduling: 'lifo', ca: [...rootCertificates, pem] });
    caAgents.set(caFile, a);
  }
  return a;
}

class NodeResponse implements UpstreamResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  readonly body: AsyncIterable<Uint8Array> & { cancel(): Promise<void> };

  constructor(msg: IncomingMessage) {
    this.status = msg.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.headers = {
      get: (name) => {
        const v = msg.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    };
    this.body = {
      [Symbol.asyncIterator]: () => msg[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>,
      cancel: async () => {
        msg.destroy();
      },
    };
  }

  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const chunk of this.body) parts.push(chunk as Buffer);
    return Buffer.concat(parts).toString('utf8');
  }
}

/**
 * POSTs `body`; resolves when the response head arrives. Rejects on a connection failure or when
 * `signal` aborts (then the response's body stops too).
 */
export function postUpstream(
  url: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
  caFile = '',
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith('https:');
    if (!secure && !url.startsWith('http:')) {
      reject(new Error(`not an http(s) URL: ${url.slice(0, 40)}`));
      return;
    }
    const req = (secure ? httpsRequest : httpRequest)(
      url,
      {
        method: 'POST',
        agent: secure ? (caFile ? caAgent(caFile) : agents.https) : agents.http,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal,
      },
      (res) => resolve(new NodeResponse(res)),
    );
    req.on('error', reject);
    req.end(body);
  });
}
