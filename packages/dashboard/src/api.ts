// The dashboard's one client: same origin as the page, API key from this browser's storage.
import { createClient, FerryClientError } from '@ferry/client';

const KEY = 'ferry.apiKey';
export const apiKey = {
  get: (): string | undefined => localStorage.getItem(KEY) ?? undefined,
  set: (k: string) => {
    if (k) localStorage.setItem(KEY, k);
    else localStorage.removeItem(KEY);
  },
};

export const client = createClient({ baseUrl: '', apiKey: () => apiKey.get(), timeoutMs: 60_000 });

/** Listeners told when a call was refused for lack of a (valid) key, so the shell can ask for one. */
const authListeners = new Set<() => void>();
export const onAuthNeeded = (f: () => void) => {
  authListeners.add(f);
  return () => {
    authListeners.delete(f);
  };
};

/** A readable line for any error, and the API-key prompt when the server wants a key. */
export function describeError(e: unknown): string {
  if (e instanceof FerryClientError) {
    if (e.status === 401 || e.status === 403) for (const f of authListeners) f();
    const issues = Array.isArray(e.problem?.errors)
      ? ` — ${(e.problem!.errors as Array<{ pointer: string; reason: string }>).map((i) => `${i.pointer}: ${i.reason}`).join('; ')}`
      : '';
    return `${e.code} (${e.status || 'client'}): ${e.message}${issues}`;
  }
  return String((e as Error)?.message ?? e);
}

/** True for "this server has no such endpoint" (a feature another version of Ferry adds). */
export const isMissingRoute = (e: unknown) =>
  e instanceof FerryClientError && (e.code === 'route-not-found' || (e.status === 404 && e.code.startsWith('http-')));
