// The spans Ferry makes, behind one switch: with tracing off (the default) every helper returns at its
// first line, before any OpenTelemetry object is made, so the predict path pays one boolean check.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';

let enabled = false;

/** Set by startTracing (tracing.ts) only. */
export function setTracingEnabled(on: boolean): void {
  enabled = on;
}

export function tracingEnabled(): boolean {
  return enabled;
}

const tracer = () => trace.getTracer('ferry');

function fail(span: Span, e: unknown): void {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}

/**
 * Runs `fn` inside a child span of the active one (sync or async); without tracing, just runs it.
 * @example const rows = withSpan('ferry.validate', () => validator.check(body), { 'ferry.model': name });
 */
export function withSpan<T>(name: string, fn: () => T, attributes?: Attributes): T {
  if (!enabled) return fn();
  return tracer().startActiveSpan(name, { ...(attributes && { attributes }) }, (span) => {
    let result: T;
    try {
      result = fn();
    } catch (e) {
      fail(span, e);
      span.end();
      throw e;
    }
    if (result instanceof Promise) {
      return result.then(
        (v: unknown) => {
          span.end();
          return v;
        },
        (e: unknown) => {
          fail(span, e);
          span.end();
          throw e;
        },
      ) as T;
    }
    span.end();
    return result;
  });
}

/** A span started now under the active context and ended by the caller (undefined without tracing). */
export function startSpan(name: string, attributes?: Attributes): Span | undefined {
  if (!enabled) return undefined;
  return tracer().startSpan(name, { ...(attributes && { attributes }) });
}

/** The active span's context, to link to later (a batch links the requests it served). */
export function activeSpanContext(): SpanContext | undefined {
  if (!enabled) return undefined;
  return trace.getActiveSpan()?.spanContext();
}

/**
 * Runs `fn` in a new root span linked to `links` (the requests a batch serves): a batch belongs to
 * no single request's trace, and each request's trace points at it.
 */
export function withLinkedRootSpan<T>(
  name: string,
  links: ReadonlyArray<SpanContext | undefined>,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  if (!enabled) return fn();
  const spanLinks: Link[] = links.filter((l): l is SpanContext => l !== undefined).map((c) => ({ context: c }));
  const span = tracer().startSpan(name, { attributes, links: spanLinks }, ROOT_CONTEXT);
  return context.with(trace.setSpan(ROOT_CONTEXT, span), fn).then(
    (v) => {
      span.end();
      return v;
    },
    (e: unknown) => {
      fail(span, e);
      span.end();
      throw e;
    },
  );
}

/** Headers (HTTP) or metadata (gRPC, as a plain map) carrying a W3C traceparent. */
export type Carrier = Readonly<Record<string, unknown>>;

const getter = {
  keys: (c: Carrier) => Object.keys(c),
  get: (c: Carrier, key: string) => {
    const v = c[key];
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && typeof v[0] === 'string') return v[0] as string;
    return undefined;
  },
};

/**
 * A SERVER span for an incoming request, child of the caller's `traceparent` when it sends one, and
 * the context to run the request in. Undefined without tracing.
 */
export function startServerSpan(
  name: string,
  carrier: Carrier,
  attributes: Attributes,
): { span: Span; context: Context } | undefined {
  if (!enabled) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, carrier, getter);
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends a server span with its outcome (an error status for 5xx or a thrown error). */
export function endServerSpan(span: Span | undefined, attributes: Attributes, error?: boolean): void {
  if (!span) return;
  span.setAttributes(attributes);
  if (error) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/**
 * A CLIENT span for an outgoing call (an LLM upstream, an alert webhook) and the context to make the
 * call in, so traceHeaders() inside it names this span. `root`: a trace of its own (an alert belongs to
 * no request). Undefined without tracing; end it with endClientSpan.
 * @example
 *   const s = startClientSpan('chat gpt-4o', { 'gen_ai.operation.name': 'chat' });
 *   const res = await runInContext(s?.context, () => fetch(url, { headers: traceHeaders() }));
 *   endClientSpan(s?.span, { 'http.response.status_code': res.status });
 */
export function startClientSpan(
  name: string,
  attributes: Attributes,
  opts: { root?: boolean } = {},
): { span: Span; context: Context } | undefined {
  if (!enabled) return undefined;
  const parent = opts.root ? ROOT_CONTEXT : context.active();
  const span = tracer().startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends a client span with the call's outcome; an `error` marks it failed (and is recorded). */
export function endClientSpan(span: Span | undefined, attributes: Attributes, error?: unknown): void {
  if (!span) return;
  span.setAttributes(attributes);
  if (error !== undefined) fail(span, error);
  span.end();
}

/**
 * OpenMetrics exemplar labels (`trace_id`, `span_id`) of `span`, or of the active span: only with
 * tracing on and a sampled span, so an exemplar always names a trace the backend has.
 */
export function exemplarLabels(span?: Span): { trace_id: string; span_id: string } | undefined {
  if (!enabled) return undefined;
  const c = (span ?? trace.getActiveSpan())?.spanContext();
  if (!c || (c.traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return { trace_id: c.traceId, span_id: c.spanId };
}

/** Runs `fn` in `ctx` (from startServerSpan); without one, just runs it. */
export function runInContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx ? context.with(ctx, fn) : fn();
}

/** The active trace as a W3C `traceparent` header (for outgoing calls and stored job records). */
export function traceHeaders(ctx?: Context): Record<string, string> {
  if (!enabled) return {};
  const out: Record<string, string> = {};
  propagation.inject(ctx ?? context.active(), out);
  return out;
}

/** The context a stored `traceparent` names (a job's run joins its submission's trace). */
export function contextFromTraceparent(traceparent: string | undefined): Context | undefined {
  if (!enabled || !traceparent) return undefined;
  return propagation.extract(ROOT_CONTEXT, { traceparent }, getter);
}

/** `trace_id` and `span_id` of the active span, for log lines (pino mixin). */
export function traceLogFields(): Record<string, string> {
  if (!enabled) return {};
  const c = trace.getActiveSpan()?.spanContext();
  return c ? { trace_id: c.traceId, span_id: c.spanId } : {};
}
