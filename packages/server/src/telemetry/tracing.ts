// OpenTelemetry tracing for the whole process, configured by the standard OTEL_* environment variables
// and off unless an OTLP exporter is asked for (OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint is set).
// When off nothing is registered: the @opentelemetry/api calls below are no-ops and spans.ts skips
// them before they are made, so tracing costs nothing. When on: OTLP over HTTP (the exporter reads
// OTEL_EXPORTER_OTLP_* itself), the sampler from OTEL_TRACES_SAMPLER / _ARG (parent-based always-on by
// default), the resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, W3C traceparent propagation,
// and an AsyncLocalStorage context so a request's spans and log lines find their trace.
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { setTracingEnabled } from './spans.js';

export interface Tracing {
  readonly enabled: boolean;
  /** Sends the spans still buffered and unregisters the provider. */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces (the OpenTelemetry SDK's own variables). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes('none')) return false;
  if (exporters.includes('otlp')) return true;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

const OFF: Tracing = { enabled: false, shutdown: async () => undefined };
let active: Tracing | undefined;

/**
 * Starts tracing for this process if the environment asks for it; idempotent (one provider per
 * process, as OpenTelemetry's globals are per process).
 * @example
 *   // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 OTEL_TRACES_SAMPLER=parentbased_traceidratio \
 *   // OTEL_TRACES_SAMPLER_ARG=0.01 ferry serve
 *   const tracing = startTracing({ serviceVersion: '0.1.0' });
 */
export function startTracing(opts: { serviceVersion: string; env?: NodeJS.ProcessEnv }): Tracing {
  if (active) return active;
  if (!tracingRequested(opts.env)) return OFF;
  const resource = resourceFromAttributes({ 'service.name': 'ferry', 'service.version': opts.serviceVersion }).merge(
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults above.
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  setTracingEnabled(true);
  const started: Tracing = {
    enabled: true,
    async shutdown() {
      if (active !== started) return;
      active = undefined;
      setTracingEnabled(false);
      await provider.shutdown().catch(() => undefined);
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
  active = started;
  return started;
}
