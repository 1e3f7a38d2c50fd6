// The connection cap: past `limit` open connections a new one is answered with a complete 503
// problem (Retry-After, Connection: close) and closed, before any of its bytes are parsed — a clear
// refusal instead of the file-descriptor exhaustion that took /healthz down under 20,000 slow
// clients. Node's own `server.maxConnections` only drops the socket without a word, so it is set a
// little above the cap as a backstop, and the cap itself is applied where connections arrive.
import { readFileSync } from 'node:fs';
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { toProblem, FerryError } from '../errors.js';

/** 80 % of the soft open-files limit (Linux /proc), capped at 20,000; 10,000 where it cannot be read. */
export function defaultMaxConnections(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return Math.max(64, Math.min(20_000, Math.floor(Number(m[1]) * 0.8)));
  } catch {
    /* not Linux */
  }
  return 10_000;
}

export interface ConnectionCap {
  readonly limit: number;
  open(): number;
  refused(): number;
}

export function installConnectionCap(
  server: Server<typeof IncomingMessage, typeof ServerResponse>,
  limit: number,
): ConnectionCap {
  let open = 0;
  let refused = 0;
  const body = JSON.stringify(
    toProblem(
      new FerryError('server-overloaded', {
        detail: `the server has ${limit} open connections, its limit (server.maxConnections); retry shortly`,
        extra: { limit },
      }),
    ),
  );
  const response =
    'HTTP/1.1 503 Service Unavailable\r\n' +
    'Content-Type: application/problem+json\r\n' +
    'Retry-After: 1\r\n' +
    'Connection: close\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  // Backstop: Node drops connections past this without answering (the refusals need a few sockets).
  server.maxConnections = limit + Math.max(16, Math.ceil(limit / 20));
  // The HTTP server's own 'connection' listener would start parsing the socket: a refused socket must
  // never reach it, so the cap sits in front of the event rather than beside it.
  const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
  (server as { emit: typeof emit }).emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event !== 'connection') return emit(event, ...args);
    const socket = args[0] as Socket;
    if (open >= limit) {
      refused++;
      socket.on('error', () => undefined);
      socket.end(response);
      // A client that does not read the answer must not hold the descriptor.
      socket.setTimeout(1000, () => socket.destroy());
      return true;
    }
    open++;
    socket.once('close', () => {
      open--;
    });
    return emit(event, ...args);
  };
  return { limit, open: () => open, refused: () => refused };
}
