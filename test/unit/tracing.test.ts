import { Writable } from 'node:stream';
import { propagation, trace, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';
import type { CallMeta } from '../../gateway/src/runners/runner-client.ts';
import { Batcher, type CallSpec, type RunnerHandle } from '../../gateway/src/core/batcher.ts';
import { tracesRequested } from '../../gateway/src/tracing/setup.ts';
import { contextOf, startServerSpan, traceIdOf, useTracer } from '../../gateway/src/tracing/spans.ts';
import { testApp } from './test-app.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE}-${CLIENT_SPAN}-01`;

/** Log lines as objects, from a pino logger writing into memory. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  beforeEach(() => {
    exporter.reset();
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    useTracer(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }).getTracer('test'));
  });
  afterEach(() => useTracer(undefined));

  it('is on only when an OTLP endpoint or exporter is asked for and nothing turns it off', () => {
    expect(tracesRequested({})).toBe(false);
    expect(tracesRequested({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracesRequested({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracesRequested({ OTEL_TRACES_EXPORTER: 'console, otlp' })).toBe(true);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'console' })).toBe(false);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });

  it('reads the trace id of a valid traceparent only', () => {
    expect(traceIdOf(TRACEPARENT)).toBe(TRACE);
    expect(traceIdOf(`00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`)).toBeUndefined();
    expect(traceIdOf('00-xyz-1-01')).toBeUndefined();
    expect(traceIdOf(`ff-${TRACE}-${CLIENT_SPAN}-01`)).toBeUndefined(); // version ff is invalid
    expect(traceIdOf(`00-${TRACE}-${'0'.repeat(16)}-01`)).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });

  it("makes the request's server span under the client's, with its status, and logs its trace id", async () => {
    const { lines, logger } = capturedLogger();
    const app = testApp({}, logger);
    const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { traceparent: TRACEPARENT, 'x-request-id': 'r-1' }, payload: {} });
    expect(res.statusCode).toBe(400);
    await app.close();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('POST /v1/embeddings');
    expect(span?.spanContext().traceId).toBe(TRACE);
    expect(span?.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 400, 'http.route': '/v1/embeddings', 'edge_embed.request_id': 'r-1' });
    expect(span?.status.code).not.toBe(2); // a 4xx is the client's error, not the server's
    const rejected = lines.find((l) => l.request_id === 'r-1');
    expect(rejected?.trace_id).toBe(TRACE);
  });

  it("logs the client's trace id while tracing is off, and makes no span", async () => {
    useTracer(undefined);
    const { lines, logger } = capturedLogger();
    const app = testApp({}, logger);
    const res = await app.inject({ method: 'POST', url: '/v1/embeddings', headers: { traceparent: TRACEPARENT, 'x-request-id': 'r-2' }, payload: {} });
    expect(res.statusCode).toBe(400);
    await app.close();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(lines.find((l) => l.request_id === 'r-2')?.trace_id).toBe(TRACE);
  });

  it('records the wait of a job that fails in the queue, as failed', async () => {
    const runner = { state: 'ready', info: undefined, on() {}, served() {}, client: {} } as unknown as RunnerHandle;
    const never: CallSpec<number> = { key: 'k', run: () => new Promise(() => {}) };
    const batcher = new Batcher('m', [runner], {
      enableBatching: true, windowMs: 0, maxBatchInputs: 8, maxBatchTokens: 10_000, maxConcurrent: 1, maxQueue: 10,
      queueTimeoutMs: 50, perInputTimeoutMs: 1_000,
    }, createMetrics());
    const span = startServerSpan('POST x', {}, {})!;
    void batcher.submit(['busy'], never, 'busy').catch(() => {});
    await expect(batcher.submit(['waits'], never, 'waits', undefined, { id: span.spanContext().traceId, context: contextOf(span) }))
      .rejects.toMatchObject({ code: 'queue_timeout' });
    const [queue] = exporter.getFinishedSpans().filter((s) => s.name === 'queue');
    expect(queue?.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
    expect(queue?.status.code).toBe(2);
  });

  it('gives each job a queue span and each call a batch span under its first sampled request, linked to the others', async () => {
    const calls: { texts: string[]; meta: CallMeta; finish: () => void }[] = [];
    const runner = {
      state: 'ready', info: undefined, on() {}, served() {},
      client: {},
    } as unknown as RunnerHandle;
    const spec: CallSpec<number> = {
      key: 'k',
      run: (_client, texts, meta) => new Promise((resolve) => {
        calls.push({ texts, meta, finish: () => resolve({ items: texts.map(() => 1), tokens: texts.map(() => 3), computeSeconds: 0, failures: [] }) });
      }),
    };
    const batcher = new Batcher('m', [runner], {
      enableBatching: true, windowMs: 0, maxBatchInputs: 8, maxBatchTokens: 10_000, maxConcurrent: 1, maxQueue: 10,
      queueTimeoutMs: 10_000, perInputTimeoutMs: 1_000,
    }, createMetrics());
    // 'b' comes from a client that does not sample its trace: its batch span must not take the others' with it.
    const unsampled = { traceparent: `00-${'1'.repeat(32)}-${CLIENT_SPAN}-00` };
    const request = (id: string) => startServerSpan(`POST ${id}`, id === 'b' ? unsampled : {}, {})!;
    const spans = ['a', 'b', 'c'].map(request);
    const traces = spans.map((s) => ({ id: s.spanContext().traceId, context: contextOf(s) as Context }));
    const jobs = ['a', 'b', 'c'].map((id, i) => batcher.submit([id], spec, id, undefined, traces[i]));
    // 'a' goes at once, alone; 'b' and 'c' wait and share the next call.
    calls[0]!.finish();
    await jobs[0];
    await new Promise((r) => setImmediate(r));
    expect(calls[1]?.texts).toEqual(['b', 'c']);
    calls[1]!.finish();
    await Promise.all(jobs);

    const finished = exporter.getFinishedSpans();
    const batches = finished.filter((s) => s.name === 'batch');
    expect(batches).toHaveLength(2);
    const shared = batches.find((s) => s.attributes['edge_embed.inputs'] === 2)!;
    expect(shared.parentSpanContext?.spanId).toBe(spans[2]!.spanContext().spanId);
    expect(shared.links.map((l) => l.context.spanId)).toEqual([spans[1]!.spanContext().spanId]);
    expect(shared.attributes['edge_embed.request_ids']).toEqual(['b', 'c']);
    expect(trace.getSpanContext(calls[1]!.meta.trace!)?.spanId).toBe(shared.spanContext().spanId);
    expect(calls[1]!.meta.traceIds).toEqual([traces[1]!.id, traces[2]!.id]); // for the runner's log lines
    const queues = finished.filter((s) => s.name === 'queue');
    // The unsampled request's spans are not recorded; the others' hang from their requests.
    expect(queues.map((s) => s.parentSpanContext?.spanId).sort()).toEqual([spans[0]!, spans[2]!].map((s) => s.spanContext().spanId).sort());
  });
});
