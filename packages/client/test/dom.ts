// A DOM for React tests in Node (happy-dom), keeping Node's own network and timer globals: the client
// under test must talk to the real server with the real fetch, AbortController and timers, not with
// happy-dom's emulations of them (which would also apply a page's CORS rules to the test).
import { GlobalRegistrator } from '@happy-dom/global-registrator';

const KEEP = [
  'fetch',
  'Request',
  'Response',
  'Headers',
  'AbortController',
  'AbortSignal',
  'Blob',
  'File',
  'FormData',
  'URL',
  'URLSearchParams',
  'TextEncoder',
  'TextDecoder',
  'ReadableStream',
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
  'queueMicrotask',
  'performance',
] as const;

/** Installs the DOM globals; returns the function that removes them. */
export function installDom(url = 'http://localhost/'): () => Promise<void> {
  const g = globalThis as Record<string, unknown>;
  const saved = Object.fromEntries(KEEP.map((k) => [k, g[k]]));
  GlobalRegistrator.register({ url });
  for (const k of KEEP) Object.defineProperty(globalThis, k, { value: saved[k], writable: true, configurable: true });
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;
  return () => GlobalRegistrator.unregister();
}
