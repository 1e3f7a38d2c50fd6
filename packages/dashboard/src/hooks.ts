import { useEffect, useState } from 'react';
import { describeError } from './api';

/** Runs `load` when `deps` change (and every `pollMs` if given); keeps the last good value on error. */
export function useLoad<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
  pollMs = 0,
): { data: T | undefined; error: string | undefined; raw: unknown; reload(): void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [raw, setRaw] = useState<unknown>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = () => {
      load(ctl.signal)
        .then((d) => {
          if (!ctl.signal.aborted) {
            setData(d);
            setError(undefined);
            setRaw(undefined);
          }
        })
        .catch((e: unknown) => {
          if (!ctl.signal.aborted) {
            setError(describeError(e));
            setRaw(e);
          }
        })
        .finally(() => {
          if (pollMs > 0 && !ctl.signal.aborted) timer = setTimeout(run, pollMs);
        });
    };
    run();
    return () => {
      ctl.abort();
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { data, error, raw, reload: () => setTick((t) => t + 1) };
}

export function useHashRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'home').split('/').map(decodeURIComponent);
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const on = () => setParts(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parts;
}
