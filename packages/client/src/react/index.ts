// React hooks over @ferry/client. Each hook owns an AbortController: a new input or an unmount
// cancels the request in flight, so a fast typist never sees an old answer land after a new one.
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import type { FerryClient, PredictOptions } from '../client.js';
import type { FerryClientError } from '../errors.js';
import type { AudioEvent, AudioSessionOptions } from '../audio.js';
import type { ChatRequest } from '../openai.js';
import type { InputOf, Job, ModelName, PredictionOf, PredictResult } from '../types.js';

const FerryContext = createContext<FerryClient | null>(null);

export function FerryProvider(props: { client: FerryClient; children?: ReactNode }) {
  return createElement(FerryContext.Provider, { value: props.client }, props.children);
}

export function useFerryClient(explicit?: FerryClient): FerryClient {
  const c = useContext(FerryContext);
  const client = explicit ?? c;
  if (!client) throw new Error('no Ferry client: wrap the app in <FerryProvider client={...}> or pass one');
  return client;
}

export interface PredictionState<P> {
  data: PredictResult<P> | undefined;
  error: FerryClientError | Error | undefined;
  loading: boolean;
}

/**
 * Predicts whenever `instances` change (compared by value), after `debounceMs`.
 * @example const { data } = usePrediction('spam', text ? [{ text }] : null, { debounceMs: 150 });
 */
export function usePrediction<M extends ModelName>(
  model: M,
  instances: Array<InputOf<M>> | null | undefined,
  o: PredictOptions<InputOf<M>, PredictionOf<M>> & { debounceMs?: number; client?: FerryClient } = {},
): PredictionState<PredictionOf<M>> & { refetch(): void } {
  const client = useFerryClient(o.client);
  const [state, setState] = useState<PredictionState<PredictionOf<M>>>({
    data: undefined,
    error: undefined,
    loading: false,
  });
  const [tick, setTick] = useState(0);
  const key = instances ? JSON.stringify(instances) : '';
  const optsRef = useRef(o);
  optsRef.current = o;
  useEffect(() => {
    if (!key) {
      setState({ data: undefined, error: undefined, loading: false });
      return;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    const timer = setTimeout(() => {
      client
        .predict(model, JSON.parse(key) as Array<InputOf<M>>, { ...optsRef.current, signal: ctl.signal })
        .then((data) => {
          if (!ctl.signal.aborted) setState({ data, error: undefined, loading: false });
        })
        .catch((error: Error) => {
          if (!ctl.signal.aborted) setState((s) => ({ data: s.data, error, loading: false }));
        });
    }, o.debounceMs ?? 0);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [client, model, key, tick, o.debounceMs]);
  return { ...state, refetch: useCallback(() => setTick((t) => t + 1), []) };
}

/** Follows a job to its end over SSE; `job` updates with every state and progress change. */
export function useJob<R = unknown>(
  id: string | null | undefined,
  o: { client?: FerryClient } = {},
): { job: Job<R> | undefined; error: Error | undefined; done: boolean } {
  const client = useFerryClient(o.client);
  const [job, setJob] = useState<Job<R>>();
  const [error, setError] = useState<Error>();
  useEffect(() => {
    setJob(undefined);
    setError(undefined);
    if (!id) return;
    const ctl = new AbortController();
    client.jobs
      .wait<R>(id, {
        signal: ctl.signal,
        onProgress: (j) => {
          if (!ctl.signal.aborted) setJob(j);
        },
      })
      .then((j) => {
        if (!ctl.signal.aborted) setJob(j);
      })
      .catch((e: Error) => {
        if (!ctl.signal.aborted) setError(e);
      });
    return () => ctl.abort();
  }, [client, id]);
  const done = job?.state === 'completed' || job?.state === 'failed' || job?.state === 'cancelled';
  return { job, error, done };
}

/** Streams an OpenAI-style completion; `start(request)` begins, `stop()` cancels (the server stops too). */
export function useTokenStream(o: { client?: FerryClient } = {}): {
  text: string;
  streaming: boolean;
  error: Error | undefined;
  start(req: ChatRequest): void;
  stop(): void;
} {
  const client = useFerryClient(o.client);
  const [text, setText] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState<Error>();
  const ctlRef = useRef<AbortController | null>(null);
  const stop = useCallback(() => {
    ctlRef.current?.abort();
    ctlRef.current = null;
    setStreaming(false);
  }, []);
  const start = useCallback(
    (req: ChatRequest) => {
      ctlRef.current?.abort();
      const ctl = new AbortController();
      ctlRef.current = ctl;
      setText('');
      setError(undefined);
      setStreaming(true);
      void (async () => {
        try {
          for await (const c of client.chatStream(req, { signal: ctl.signal })) setText(c.text);
        } catch (e) {
          if (!ctl.signal.aborted) setError(e as Error);
        } finally {
          if (ctlRef.current === ctl) setStreaming(false);
        }
      })();
    },
    [client],
  );
  useEffect(() => () => ctlRef.current?.abort(), []);
  return { text, streaming, error, start, stop };
}

/** An audio session: `send` PCM chunks, read `events` (speech_start / speech_end ...) as they come. */
export function useAudioStream(
  model: string | null,
  o: AudioSessionOptions & { client?: FerryClient } = {},
): {
  events: AudioEvent[];
  open: boolean;
  error: Error | undefined;
  send(samples: Float32Array | Int16Array): void;
  end(): void;
} {
  const client = useFerryClient(o.client);
  const [events, setEvents] = useState<AudioEvent[]>([]);
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<Error>();
  const sessionRef = useRef<ReturnType<FerryClient['audio']> | null>(null);
  useEffect(() => {
    setEvents([]);
    setError(undefined);
    if (!model) return;
    const s = client.audio(model, o);
    sessionRef.current = s;
    s.opened.then(
      () => setOpen(true),
      (e: Error) => setError(e),
    );
    const off = s.on((e) => setEvents((all) => [...all, e]));
    // The server's `error` event (bad audio, a failed model) arrives as the typed error of its code.
    void s.closed.then((c) => {
      setOpen(false);
      if (c.error) setError(c.error);
    });
    return () => {
      off();
      s.close();
      sessionRef.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, model]);
  return {
    events,
    open,
    error,
    send: useCallback((samples: Float32Array | Int16Array) => {
      void sessionRef.current?.send(samples);
    }, []),
    end: useCallback(() => {
      void sessionRef.current?.end();
    }, []),
  };
}
