import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { tracingRequested } from './tracing.js';
import {
  activeSpanContext,
  endClientSpan,
  exemplarLabels,
  startClientSpan,
  startServerSpan,
  startSpan,
  traceHeaders,
  traceLogFields,
  tracingEnabled,
  withSpan,
} from './spans.js';

test('off unless the OTEL_* environment asks for an OTLP exporter', () => {
  assert.equal(tracingRequested({}), false);
  assert.equal(tracingRequested({ OTEL_SERVICE_NAME: 'x' }), false);
  assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }), true);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }), false);
  assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }), false);
});

test('with tracing off the helpers make nothing and only run the work', async () => {
  assert.equal(tracingEnabled(), false);
  let spans = 0;
  const original = trace.getTracer;
  trace.getTracer = (...args) => {
    spans++;
    return original.apply(trace, args);
  };
  try {
    assert.equal(
      withSpan('x', () => 41 + 1),
      42,
    );
    assert.equal(await withSpan('y', async () => 'done'), 'done');
    assert.equal(startSpan('z'), undefined);
    assert.equal(
      startServerSpan('s', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }, {}),
      undefined,
    );
    assert.equal(activeSpanContext(), undefined);
    assert.equal(startClientSpan('c', {}, { root: true }), undefined);
    endClientSpan(undefined, {}, new Error('nothing to end'));
    assert.equal(exemplarLabels(), undefined);
    assert.deepEqual(traceHeaders(), {});
    assert.deepEqual(traceLogFields(), {});
    assert.throws(
      () =>
        withSpan('e', () => {
          throw new Error('boom');
        }),
      /boom/,
    );
  } finally {
    trace.getTracer = original;
  }
  assert.equal(spans, 0, 'no tracer was asked for');
});
