// The one server-sent-events writer: SSE predict, the OpenAI-compatible streams and job events all
// open their stream here. A hijacked reply writes no headers of its own, so the ones already set on
// it (CORS from the allow-list, Ferry-Model-Version, Ferry-Rollout, Deprecation, Sunset, Link) are
// copied onto the raw response here, once, for every stream (this was lost and fixed more than once).
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface EventStream {
  /** The raw response, for backpressure (`writableNeedDrain`, 'drain') and 'close'. */
  readonly raw: ServerResponse;
  /** An `event:` message; returns what `write` returned (false: the socket buffer is full). */
  event(name: string, data: unknown, id?: number): boolean;
  /** An `event:` message whose data is already JSON text (one serialisation shared by many streams). */
  eventJson(name: string, json: string, id?: number): boolean;
  /** A bare `data:` message (OpenAI's chunks); a string is sent as is. */
  data(data: unknown): boolean;
  /** A `:` comment line, e.g. a keep-alive. */
  comment(text: string): boolean;
  /** Ends the response, after an optional last `data:` message. */
  end(lastData?: unknown): void;
}

/** An SSE `data:` frame; strings are sent verbatim (`[DONE]`). */
export const sseData = (data: unknown): string => `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

/**
 * Hijacks the reply and writes the 200 event-stream head: the reply's own headers, then the SSE
 * ones, then `headers` (per stream, e.g. `ferry-model-version`). Validation must be done before:
 * after this call an error can only be an event.
 */
export function openEventStream(
  req: FastifyRequest,
  reply: FastifyReply,
  headers: Record<string, string> = {},
): EventStream {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string | string[] | number>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    // onSend hooks do not run for a hijacked reply.
    'x-request-id': req.id,
    ...headers,
  });
  return {
    raw,
    event: (name, data, id) =>
      raw.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`),
    eventJson: (name, json, id) =>
      raw.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${json}\n\n`),
    data: (data) => raw.write(sseData(data)),
    comment: (text) => raw.write(`: ${text}\n\n`),
    end: (lastData) => {
      if (lastData === undefined) raw.end();
      else raw.end(sseData(lastData));
    },
  };
}
