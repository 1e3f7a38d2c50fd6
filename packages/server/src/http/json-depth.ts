// How deeply a JSON text nests, measured before it is parsed. Validation walks parsed bodies
// recursively (and so does building its messages), so a body of 10,000 nested `[` would overflow
// the stack there; refusing it at the parser, in one linear scan over the text, keeps every later
// step within a known depth. Hand-written: the scan is a dozen lines and a streaming JSON library
// would parse the body twice.
import type { FastifyInstance } from 'fastify';
import { FerryError } from '../errors.js';

/** The deepest nesting of `[`/`{` in `text`, outside strings; stops counting once past `limit`. */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * True when `text` holds at most `limit` opening brackets (`[` or `{`, in strings or not), so it cannot
 * nest deeper than `limit`: most bodies (a few objects of numbers) are cleared by the engine's native
 * search instead of a scan of every character in JavaScript.
 */
export function fewOpeners(text: string, limit: number): boolean {
  let n = 0;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++n > limit) return false;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++n > limit) return false;
  return true;
}

/**
 * Ferry's JSON body parser, shared by Fastify's content-type parser and the predict lane: the nesting
 * limit (limits.maxJsonDepth) checked before parsing, then Fastify's own parser (secure-json-parse:
 * `__proto__` and `constructor.prototype` keys refused). Throws the error Fastify would report.
 */
export function jsonBodyParser(app: Pick<FastifyInstance, 'getDefaultJsonParser'>, maxDepth: number) {
  const parse = app.getDefaultJsonParser('error', 'error');
  return (text: string): unknown => {
    if (!fewOpeners(text, maxDepth) && jsonDepth(text, maxDepth) > maxDepth) {
      throw new FerryError('invalid-json', {
        detail: `the body nests deeper than ${maxDepth} levels (limits.maxJsonDepth)`,
        extra: { limit: maxDepth },
      });
    }
    let failure: Error | null = null;
    let parsed: unknown;
    // Fastify's parser answers through its callback, synchronously; it never reads the request.
    parse(undefined as never, text, (err: Error | null, body?: unknown) => {
      failure = err;
      parsed = body;
    });
    if (failure) throw failure as Error;
    return parsed;
  };
}
