// A playground per model, generated from its contract: a form for tabular and text features (with
// an edge/server toggle that shows both latencies), image upload with boxes for OCR, WAV or
// microphone audio for VAD with a live speech timeline, and chat for generative models.
import { useEffect, useMemo, useRef, useState } from 'react';
import { decodeWav, FerryClientError, type AudioEvent, type ChatRequest, type ModelDescription } from '@ferry/client';
import { createEdgeModel, type EdgeModel } from '@ferry/client/edge';
import { usePrediction, useTokenStream } from '@ferry/client/react';
import { client, describeError } from '../api';
import { useLoad } from '../hooks';
import { PageTitle } from '../page-title';

type Feature = ModelDescription['contract']['inputs'][number];
type Mode = 'server' | 'edge' | 'compare';

export function PlaygroundPage(props: { name?: string }) {
  const list = useLoad((signal) => client.models.list({ signal }), []);
  const openai = useLoad(
    async (signal) =>
      (await client.json<{ data: Array<{ id: string }> }>('/openai/v1/models', { signal, retry: false })).data
        .map((m) => m.id)
        // The list also names each pinned version (`ham-chat@1.0.0`): one entry per model here.
        .filter((id) => !id.includes('@')),
    [],
  );
  const name = props.name ?? list.data?.[0]?.name;
  const chatModels = openai.data ?? [];
  return (
    <div>
      <PageTitle title="Playground">
        Try a model by hand: a form built from its contract, starting from a real example; run it on the server, in this
        browser (edge), or both side by side.
      </PageTitle>
      <div className="row">
        {list.data?.map((m) => (
          <a key={m.name} href={`#/playground/${m.name}`} className={m.name === name ? 'ok' : ''}>
            {m.name}
          </a>
        ))}
        {chatModels
          .filter((c) => !list.data?.some((m) => m.name === c))
          .map((c) => (
            <a key={c} href={`#/playground/${c}`}>
              {c} (chat)
            </a>
          ))}
      </div>
      {list.error && <p className="error">{list.error}</p>}
      {name &&
        (chatModels.includes(name) && !list.data?.some((m) => m.name === name) ? (
          <ChatPanel model={name} />
        ) : (
          <ModelPlayground key={name} name={name} chat={chatModels.includes(name)} />
        ))}
    </div>
  );
}

function ModelPlayground(props: { name: string; chat: boolean }) {
  const d = useLoad((signal) => client.models.get(props.name, { signal }), [props.name]);
  if (d.error) return <p className="error">{d.error}</p>;
  if (!d.data) return <p className="muted">loading…</p>;
  const m = d.data;
  const c = m.contract as Record<string, unknown>;
  if (m.contract.inputs.some((f) => f.type === 'image')) return <OcrPanel model={m} />;
  if (c.streaming !== undefined || /vad/.test(m.name)) return <VadPanel model={m} />;
  if (props.chat || c.generative !== undefined) return <ChatPanel model={m.name} />;
  return <FeatureForm model={m} />;
}

/** A field's starting value: the model's example instance (a real row where it has one), else a guess. */
function initialValue(f: Feature, example: Record<string, unknown> | undefined): string | boolean {
  const ex = example?.[f.name];
  if (ex !== undefined && ex !== null) {
    if (typeof ex === 'boolean') return ex;
    // 8.916666666666666 fits no input box: a few decimals are as good an example.
    if (typeof ex === 'number') return String(Number.isInteger(ex) ? ex : Number(ex.toPrecision(6)));
    return typeof ex === 'object' ? JSON.stringify(ex) : String(ex);
  }
  const def = (f as { default?: unknown }).default;
  if (def !== undefined) return typeof def === 'boolean' ? def : String(def);
  switch (f.type) {
    case 'boolean':
      return false;
    case 'category':
      return String((f.values as string[])[0]);
    case 'number':
    case 'integer': {
      const min = f.min as number | undefined,
        max = f.max as number | undefined;
      const mid = min !== undefined && max !== undefined ? (min + max) / 2 : (min ?? max ?? 0);
      return String(f.type === 'integer' ? Math.round(mid) : mid);
    }
    case 'tensor':
      return '[]';
    default:
      return '';
  }
}

/** What one instance of a tensor input holds: its dtype and its shape without the batch dimension. */
function tensorHint(f: Feature): string {
  const shape = Array.isArray(f.shape) ? (f.shape as number[]) : [];
  const row = shape.length > 1 ? shape.slice(1) : shape;
  const dims = row.map((d) => (d < 0 ? 'any' : String(d)));
  const count = row.every((d) => d >= 0) ? row.reduce((a, b) => a * b, 1) : undefined;
  return `${String(f.dtype ?? 'tensor')} [${dims.join(', ')}] per instance, as nested JSON arrays${
    count !== undefined ? ` (${count} values)` : ''
  }`;
}

function toInstance(features: Feature[], values: Record<string, string | boolean>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of features) {
    const v = values[f.name];
    if (v === '' && f.optional) continue;
    if (f.type === 'number' || f.type === 'integer') out[f.name] = v === '' ? v : Number(v);
    else if (f.type === 'tensor') {
      try {
        out[f.name] = JSON.parse(String(v));
      } catch {
        out[f.name] = v;
      }
    } else out[f.name] = v;
  }
  return out;
}

interface Outcome {
  source: string;
  version: string;
  latencyMs: number;
  predictions: unknown[];
  fallback?: unknown;
}

function FeatureForm(props: { model: ModelDescription }) {
  const m = props.model;
  const features = m.contract.inputs;
  const [values, setValues] = useState<Record<string, string | boolean>>(() =>
    Object.fromEntries(features.map((f) => [f.name, initialValue(f, m.example)])),
  );
  const [mode, setMode] = useState<Mode>('server');
  const [results, setResults] = useState<Outcome[]>([]);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const edge = useRef<Promise<EdgeModel> | null>(null);
  const edgeable = !(m.contract as Record<string, unknown>).pipeline;

  const getEdge = () => (edge.current ??= createEdgeModel(client, `${m.name}@${m.version}`, { mode: 'edge' }));
  useEffect(
    () => () => {
      void edge.current?.then((e) => e.dispose()).catch(() => undefined);
    },
    [],
  );

  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const instance = toInstance(features, values);
      const out: Outcome[] = [];
      if (mode !== 'edge') {
        const r = await client.predict(m.name, [instance], { version: m.version });
        out.push({
          source: 'server',
          version: r.version,
          latencyMs: r.latencyMs,
          predictions: r.predictions,
          ...(r.fallback && { fallback: r.fallback }),
        });
      }
      if (mode !== 'server') {
        const e = await getEdge();
        const r = await e.predict([instance]);
        out.push({
          source: `edge (artifact ${(e.artifactBytes / 1024).toFixed(0)} KiB, loaded in ${e.loadMs.toFixed(0)} ms)`,
          version: r.version,
          latencyMs: r.latencyMs,
          predictions: r.predictions,
        });
      }
      setResults(out);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  // Predict as you type (server): the hook debounces and cancels the request a newer keystroke makes stale.
  const [live, setLive] = useState(false);
  const liveInstance = useMemo(() => (live ? [toInstance(features, values)] : null), [live, features, values]);
  const livePrediction = usePrediction(m.name, liveInstance, { version: m.version, debounceMs: 150 });

  const diff = useMemo(() => {
    if (results.length !== 2) return undefined;
    const a = results[0]!.predictions[0] as { scores?: Record<string, number> };
    const b = results[1]!.predictions[0] as { scores?: Record<string, number> };
    if (!a.scores || !b.scores) return undefined;
    return Math.max(...Object.keys(a.scores).map((k) => Math.abs(a.scores![k]! - (b.scores![k] ?? NaN))));
  }, [results]);

  return (
    <div className="grid">
      <form
        className="card"
        data-testid="predict-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <h3>
          {m.name}@{m.version}
        </h3>
        {features.map((f) => (
          <label key={f.name} className="field">
            <span>
              {f.name} <small className="muted">{f.type}</small>
            </span>
            <FieldInput f={f} value={values[f.name]!} onChange={(v) => setValues((s) => ({ ...s, [f.name]: v }))} />
            {f.type === 'tensor' && (
              <small className="hint" data-testid={`tensor-hint-${f.name}`}>
                {tensorHint(f)}
              </small>
            )}
            {typeof f.description === 'string' && <small>{f.description}</small>}
          </label>
        ))}
        <div className="row" style={{ marginTop: '.6rem' }}>
          <span>Run on:</span>
          {(['server', 'edge', 'compare'] as Mode[]).map((k) => (
            <label key={k}>
              <input
                type="radio"
                name="mode"
                value={k}
                checked={mode === k}
                disabled={k !== 'server' && !edgeable}
                onChange={() => setMode(k)}
                data-testid={`mode-${k}`}
              />{' '}
              {k === 'compare' ? 'both' : k}
            </label>
          ))}
          <button className="primary" type="submit" disabled={busy} data-testid="predict-button">
            {busy ? 'Running…' : 'Predict'}
          </button>
          <label>
            <input
              type="checkbox"
              checked={live}
              onChange={(e) => setLive(e.target.checked)}
              data-testid="live-toggle"
            />{' '}
            predict as I type
          </label>
        </div>
        {live && (
          <div
            data-testid="live-result"
            data-label={(livePrediction.data?.predictions[0] as { label?: string } | undefined)?.label ?? ''}
          >
            {livePrediction.loading && <span className="muted">…</span>}
            {livePrediction.error && <p className="error">{describeError(livePrediction.error)}</p>}
            {livePrediction.data && (
              <PredictionView
                r={{
                  source: 'live (server)',
                  version: livePrediction.data.version,
                  latencyMs: livePrediction.data.latencyMs,
                  predictions: livePrediction.data.predictions,
                }}
              />
            )}
          </div>
        )}
      </form>
      <div className="card" data-testid="prediction-output">
        <h3>Result</h3>
        {error && (
          <p className="error" data-testid="prediction-error">
            {error}
          </p>
        )}
        {results.map((r) => (
          <PredictionView key={r.source} r={r} />
        ))}
        {diff !== undefined && (
          <p data-testid="edge-diff" data-value={diff}>
            max |edge − server| score difference: <b>{diff.toExponential(2)}</b>{' '}
            {diff <= 1e-5 ? <span className="ok">agree</span> : <span className="error">disagree</span>}
          </p>
        )}
      </div>
    </div>
  );
}

function FieldInput(props: { f: Feature; value: string | boolean; onChange(v: string | boolean): void }) {
  const { f } = props;
  const aria = { 'aria-label': f.name, 'data-testid': `field-${f.name}` };
  if (f.type === 'boolean')
    return (
      <input
        type="checkbox"
        checked={props.value === true}
        onChange={(e) => props.onChange(e.target.checked)}
        {...aria}
      />
    );
  if (f.type === 'category')
    return (
      <select value={String(props.value)} onChange={(e) => props.onChange(e.target.value)} {...aria}>
        {(f.values as string[]).map((v) => (
          <option key={v}>{v}</option>
        ))}
      </select>
    );
  if (f.type === 'number' || f.type === 'integer') {
    return (
      <input
        type="number"
        value={String(props.value)}
        step={f.type === 'integer' ? 1 : 'any'}
        {...(f.min !== undefined && { min: f.min as number })}
        {...(f.max !== undefined && { max: f.max as number })}
        onChange={(e) => props.onChange(e.target.value)}
        {...aria}
      />
    );
  }
  if (f.type === 'string' || f.type === 'tensor')
    return (
      <textarea
        rows={f.type === 'string' ? 5 : 3}
        value={String(props.value)}
        onChange={(e) => props.onChange(e.target.value)}
        {...aria}
      />
    );
  return <input value={String(props.value)} onChange={(e) => props.onChange(e.target.value)} {...aria} />;
}

function PredictionView(props: { r: Outcome }) {
  const { r } = props;
  const p = r.predictions[0] as { label?: string; scores?: Record<string, number> } | undefined;
  return (
    <div data-testid={`result-${r.source.split(' ')[0]}`}>
      <p>
        <b>{r.source}</b> · v{r.version} · <span data-testid="latency">{r.latencyMs.toFixed(1)} ms</span>
        {r.fallback ? <span className="error"> · fallback {JSON.stringify(r.fallback)}</span> : null}
      </p>
      {p?.label !== undefined && (
        <p>
          label: <b data-testid="predicted-label">{p.label}</b>
        </p>
      )}
      {p?.scores && (
        <table>
          <tbody>
            {Object.entries(p.scores).map(([k, v]) => (
              <tr key={k}>
                <td>{k}</td>
                <td data-testid={`score-${k}`} data-value={v}>
                  {v.toFixed(6)}
                </td>
                <td style={{ width: '50%' }}>
                  <div className="bar">
                    <div style={{ width: `${v * 100}%` }} />
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!p?.scores && <pre>{JSON.stringify(r.predictions, null, 2)}</pre>}
    </div>
  );
}

interface OcrLine {
  text: string;
  confidence: number;
  box: number[][];
}

function OcrPanel(props: { model: ModelDescription }) {
  const [url, setUrl] = useState<string>();
  const [lines, setLines] = useState<OcrLine[]>();
  const [error, setError] = useState<string>();
  const [ms, setMs] = useState<number>();
  const img = useRef<HTMLImageElement>(null);
  const [size, setSize] = useState<{ w: number; h: number }>();
  const onFile = async (file: File) => {
    setError(undefined);
    setLines(undefined);
    setUrl(URL.createObjectURL(file));
    const t0 = performance.now();
    try {
      const res = await client.fetch(`/v1/models/${encodeURIComponent(props.model.name)}/predict`, {
        method: 'POST',
        body: file,
        headers: { 'content-type': file.type || 'image/png' },
      });
      const body = (await res.json()) as { predictions: Array<{ lines: OcrLine[] }> };
      setMs(performance.now() - t0);
      setLines(body.predictions[0]?.lines ?? []);
    } catch (e) {
      setError(describeError(e));
    }
  };
  return (
    <div className="card">
      <h3>
        {props.model.name}@{props.model.version}: upload an image
      </h3>
      <input
        type="file"
        accept="image/*"
        data-testid="ocr-upload"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void onFile(f);
        }}
      />
      {error && <p className="error">{error}</p>}
      <div className="row" style={{ alignItems: 'flex-start' }}>
        {url && (
          <div className="ocr">
            <img
              ref={img}
              src={url}
              alt="uploaded"
              style={{ maxWidth: 640 }}
              onLoad={(e) => setSize({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })}
            />
            {size && lines && (
              <svg
                viewBox={`0 0 ${size.w} ${size.h}`}
                style={{ position: 'absolute', inset: 0, width: '100%', height: '100%' }}
                data-testid="ocr-boxes"
              >
                {lines.map((l, i) => (
                  <polygon
                    key={i}
                    points={l.box.map((p) => p.join(',')).join(' ')}
                    fill="rgba(47,90,168,.12)"
                    stroke="#d62828"
                    strokeWidth={Math.max(1, size.w / 400)}
                  />
                ))}
              </svg>
            )}
          </div>
        )}
        {lines && (
          <div data-testid="ocr-text">
            <p className="muted">
              {lines.length} lines in {ms?.toFixed(0)} ms
            </p>
            <ol>
              {lines.map((l, i) => (
                <li key={i}>
                  {l.text} <small className="muted">({(l.confidence * 100).toFixed(1)}%)</small>
                </li>
              ))}
            </ol>
          </div>
        )}
      </div>
    </div>
  );
}

function VadPanel(props: { model: ModelDescription }) {
  const [events, setEvents] = useState<AudioEvent[]>([]);
  const [duration, setDuration] = useState(0);
  const [error, setError] = useState<string>();
  const [live, setLive] = useState<{ stop(): void }>();
  const sessionFor = () => {
    const s = client.audio(props.model.name);
    s.on((e) => setEvents((all) => [...all, e]));
    void s.closed.then((c) => {
      if (c.error) setError(describeError(c.error));
      else if (c.code !== 1000 && c.code !== 1005) setError(`stream closed: ${c.code} ${c.reason}`);
    });
    return s;
  };
  const onWav = async (file: File) => {
    setEvents([]);
    setError(undefined);
    try {
      const samples = decodeWav(await file.arrayBuffer());
      setDuration(samples.length / 16000);
      const s = sessionFor();
      await s.opened;
      // Real-time pace is not needed for a file: chunks of 0.1 s go as fast as the socket takes them.
      for (let i = 0; i < samples.length; i += 1600) await s.send(samples.subarray(i, i + 1600));
      await s.end();
    } catch (e) {
      setError(describeError(e));
    }
  };
  const mic = async () => {
    if (live) {
      live.stop();
      setLive(undefined);
      return;
    }
    setEvents([]);
    setError(undefined);
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
      const ctx = new AudioContext({ sampleRate: 16000 });
      const src = ctx.createMediaStreamSource(stream);
      const proc = ctx.createScriptProcessor(2048, 1, 1);
      const s = sessionFor();
      const t0 = performance.now();
      proc.onaudioprocess = (e) => {
        void s.send(new Float32Array(e.inputBuffer.getChannelData(0)));
        setDuration((performance.now() - t0) / 1000);
      };
      src.connect(proc);
      proc.connect(ctx.destination);
      setLive({
        stop: () => {
          proc.disconnect();
          src.disconnect();
          stream.getTracks().forEach((t) => t.stop());
          void ctx.close();
          void s.end();
        },
      });
    } catch (e) {
      setError(describeError(e));
    }
  };
  // speech_start opens a segment; its speech_end closes it with the final (padded) bounds.
  const segments: Array<{ start: number; end?: number }> = [];
  for (const e of events) {
    if (e.type === 'speech_start') segments.push({ start: e.startMs / 1000 });
    if (e.type === 'speech_end' && segments.length)
      Object.assign(segments.at(-1)!, { start: e.startMs / 1000, end: e.endMs / 1000 });
  }
  const done = events.some((e) => e.type === 'done');
  const total = Math.max(duration, ...segments.map((s) => s.end ?? s.start), 0.001);
  return (
    <div className="card">
      <h3>
        {props.model.name}@{props.model.version}: voice activity
      </h3>
      <div className="row">
        <input
          type="file"
          accept="audio/wav"
          data-testid="vad-upload"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void onWav(f);
          }}
        />
        <button onClick={() => void mic()}>{live ? 'Stop microphone' : 'Use microphone'}</button>
      </div>
      {error && <p className="error">{error}</p>}
      <div
        className="timeline"
        data-testid="vad-timeline"
        data-done={done}
        data-segments={segments.length}
        style={{ marginTop: '.6rem' }}
      >
        {segments.map((s, i) => (
          <div
            key={i}
            data-testid="vad-segment"
            data-start-ms={Math.round(s.start * 1000)}
            data-end-ms={s.end === undefined ? '' : Math.round(s.end * 1000)}
            style={{
              left: `${(s.start / total) * 100}%`,
              width: `${(((s.end ?? duration) - s.start) / total) * 100}%`,
            }}
            title={`${s.start.toFixed(2)}–${s.end?.toFixed(2) ?? '…'} s`}
          />
        ))}
      </div>
      <p className="muted">
        {segments.length} speech segments in {duration.toFixed(1)} s of audio
      </p>
      <ol>
        {segments.map((s, i) => (
          <li key={i}>
            {s.start.toFixed(2)} s → {s.end !== undefined ? `${s.end.toFixed(2)} s` : '…'}
          </li>
        ))}
      </ol>
    </div>
  );
}

function ChatPanel(props: { model: string }) {
  const { text, streaming, error, start, stop } = useTokenStream();
  const [history, setHistory] = useState<Array<{ role: 'user' | 'assistant'; content: string }>>([]);
  const [input, setInput] = useState('');
  const [started, setStarted] = useState(0);
  // Empty = the model's own default (its ferry.yaml `generation.defaults`); temperature 0 or a seed
  // makes the reply reproducible (the same as the API answers for the same settings).
  const [temperature, setTemperature] = useState('');
  const [seed, setSeed] = useState('');
  const [maxTokens, setMaxTokens] = useState('');
  // What was last sent, and how many of the oldest exchanges it leaves out to fit the model's context.
  const [sent, setSent] = useState<ChatRequest | null>(null);
  const [forgotten, setForgotten] = useState(0);
  useEffect(() => {
    if (!streaming && text && history.at(-1)?.role === 'user')
      setHistory((h) => [...h, { role: 'assistant', content: text }]);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [streaming]);
  useEffect(() => {
    // A conversation that outgrew the context forgets its oldest exchange and asks again (as `ferry chat` does).
    if (
      error instanceof FerryClientError &&
      error.code === 'context-length-exceeded' &&
      sent &&
      sent.messages.length > 2
    ) {
      const shorter = { ...sent, messages: sent.messages.slice(2) };
      setSent(shorter);
      setForgotten((n) => n + 1);
      start(shorter);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [error]);
  return (
    <div className="card chat">
      <h3>{props.model}: chat (OpenAI-compatible stream)</h3>
      <div className="row">
        <label>
          temperature{' '}
          <input
            type="number"
            min={0}
            max={2}
            step={0.1}
            value={temperature}
            onChange={(e) => setTemperature(e.target.value)}
            placeholder="model default"
            data-testid="chat-temperature"
          />
        </label>
        <label>
          seed{' '}
          <input
            type="number"
            step={1}
            value={seed}
            onChange={(e) => setSeed(e.target.value)}
            placeholder="random"
            data-testid="chat-seed"
          />
        </label>
        <label>
          max tokens{' '}
          <input
            type="number"
            min={1}
            step={1}
            value={maxTokens}
            onChange={(e) => setMaxTokens(e.target.value)}
            placeholder="model default"
            data-testid="chat-max-tokens"
          />
        </label>
        <button
          type="button"
          onClick={() => {
            setHistory([]);
            setForgotten(0);
          }}
          disabled={streaming}
        >
          Clear
        </button>
      </div>
      {history.map((m, i) => (
        <div key={i} className={`msg ${m.role}`} data-testid={`chat-${m.role}`}>
          {m.content}
        </div>
      ))}
      {streaming && (
        <div className="msg assistant" data-testid="chat-streaming">
          {text}▍
        </div>
      )}
      {forgotten > 0 && (
        <p className="muted" data-testid="chat-forgotten" data-count={forgotten}>
          The model's context is full: the oldest {forgotten === 1 ? 'exchange is' : `${forgotten} exchanges are`} no
          longer sent.
        </p>
      )}
      {error &&
        !(
          error instanceof FerryClientError &&
          error.code === 'context-length-exceeded' &&
          (sent?.messages.length ?? 0) > 2
        ) && (
          <p className="error" data-testid="chat-error">
            {describeError(error)}
          </p>
        )}
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (!input.trim()) return;
          const next = [...history, { role: 'user' as const, content: input }];
          setHistory(next);
          setInput('');
          setStarted(performance.now());
          const req: ChatRequest = {
            model: props.model,
            messages: next.slice(2 * forgotten),
            ...(temperature !== '' && { temperature: Number(temperature) }),
            ...(seed !== '' && { seed: Number(seed) }),
            ...(maxTokens !== '' && { max_tokens: Number(maxTokens) }),
          };
          setSent(req);
          start(req);
        }}
      >
        <input
          style={{ flex: 1 }}
          value={input}
          onChange={(e) => setInput(e.target.value)}
          placeholder="Say something"
          aria-label="message"
          data-testid="chat-input"
        />
        <button className="primary" type="submit" disabled={streaming} data-testid="chat-send">
          Send
        </button>
        {streaming && (
          <button type="button" onClick={stop}>
            Stop
          </button>
        )}
        {started > 0 && !streaming && (
          <span className="muted">{((performance.now() - started) / 1000).toFixed(1)} s</span>
        )}
      </form>
    </div>
  );
}
