import {
  ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, propagation, trace,
  type Attributes, type Context, type Link, type Span, type Tracer,
} from '@opentelemetry/api';

/**
 * The spans the gateway makes, and nothing else: every helper returns at once while tracing is
 * off, so a server without OTEL_* settings pays one comparison per call site. Parents are passed
 * explicitly (a request's trace travels with its job through the batcher), because calls mix
 * requests and no ambient context could say which one a runner call belongs to.
 */

let tracer: Tracer | undefined;

/** Turns the helpers on; setup.ts calls it once the SDK is running. */
export function useTracer(next: Tracer | undefined): void {
  tracer = next;
}

/** Whether spans are being made: callers check it before building a span's attributes. */
export function tracingOn(): boolean {
  return tracer !== undefined;
}

/** What a request's work carries of its trace. */
export interface RequestTrace {
  /** The trace id its log lines carry, on both sides of the gRPC call. */
  id: string;
  /** Its span, the parent of its queue and batch spans; undefined while tracing is off. */
  context?: Context;
}

/** A W3C traceparent: version (not ff), 32-hex trace id, 16-hex parent id, flags. */
const TRACEPARENT = /^(?!ff)[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}$/;

/**
 * The trace id of a client's valid traceparent header. Logged even while tracing is off, so a
 * client's own traces still lead to our log lines.
 */
export function traceIdOf(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = TRACEPARENT.exec(header.trim());
  return match && !/^0+$/.test(match[1]!) && !/^0+$/.test(match[2]!) ? match[1] : undefined;
}

/** Starts a server span under the client's traceparent (if any); undefined while tracing is off. */
export function startServerSpan(name: string, headers: Record<string, unknown>, attributes: Attributes): Span | undefined {
  if (!tracer) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, headers);
  return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
}

/** The context that makes children of span. */
export function contextOf(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}

/** Starts an internal span under parent, such as a job's wait in the queue. */
export function startChildSpan(parent: Context, name: string, attributes: Attributes): Span | undefined {
  return tracer?.startSpan(name, { attributes }, parent);
}

const sampled = (p: Context) => ((trace.getSpanContext(p)?.traceFlags ?? 0) & TraceFlags.SAMPLED) !== 0;

/**
 * Starts an internal span under one of parents, linked to the others: a runner call serves several
 * requests, and each of their traces should reach it. The parent is the first sampled one, so that
 * an unsampled request sharing the call cannot drop the span from the sampled requests' traces.
 */
export function startLinkedSpan(name: string, parents: Context[], attributes: Attributes): Span | undefined {
  if (!tracer || parents.length === 0) return undefined;
  const parent = parents.find(sampled) ?? parents[0]!;
  const links: Link[] = parents.flatMap((p) => {
    const context = trace.getSpanContext(p);
    return p !== parent && context ? [{ context }] : [];
  });
  return tracer.startSpan(name, { attributes, links }, parent);
}

/** Ends span, marked as failed with err when there is one. */
export function endSpan(span: Span | undefined, err?: unknown): void {
  if (!span) return;
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }
  span.end();
}

/**
 * Runs a client call in its own span under parent, handing it the headers (traceparent,
 * tracestate) that carry the span to the other side.
 */
export async function clientSpan<T>(parent: Context | undefined, name: string, attributes: Attributes,
  call: (headers: Record<string, string>) => Promise<T>): Promise<T> {
  if (!tracer || !parent) return call({});
  const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
  const headers: Record<string, string> = {};
  propagation.inject(trace.setSpan(parent, span), headers);
  let failure: unknown;
  try {
    return await call(headers);
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    endSpan(span, failure);
  }
}
