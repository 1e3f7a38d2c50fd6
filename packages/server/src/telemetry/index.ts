// Tracing (OpenTelemetry): process setup from OTEL_* variables, and the span helpers the layers use.
export { startTracing, tracingRequested, type Tracing } from './tracing.js';
export {
  activeSpanContext,
  contextFromTraceparent,
  endClientSpan,
  endServerSpan,
  exemplarLabels,
  runInContext,
  startClientSpan,
  startServerSpan,
  startSpan,
  traceHeaders,
  traceLogFields,
  tracingEnabled,
  withLinkedRootSpan,
  withSpan,
  type Carrier,
} from './spans.js';
