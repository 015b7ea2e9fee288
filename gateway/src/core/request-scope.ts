import type { FastifyRequest } from 'fastify';
import type { Settings } from '../config/settings.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RequestTrace } from '../tracing/spans.ts';
import { totalTokens, type CallContext, type InputNames, type ModelService, type Outcome } from './model-service.ts';
import type { ModelRegistry, ReloadResult } from './model-registry.ts';
import type { TrafficStats } from './traffic-stats.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The served models. */
    registry: ModelRegistry;
    /** Re-reads the model settings and the catalog; undefined where the app was built without it. */
    reload: (() => Promise<ReloadResult>) | undefined;
    /** The metrics registry and instruments. */
    metrics: Metrics;
    /** The gateway's settings. */
    settings: Settings;
    /** The live traffic series behind /stats. */
    stats: TrafficStats;
  }
  interface FastifyRequest {
    /** The model a request named, for metric labels; set by modelFor. */
    modelName: string;
    /** Aborts when the client disconnects before its answer is sent. */
    abortSignal: AbortSignal;
    /** The request's trace id and span, for its work's log lines and spans; undefined without either. */
    trace: RequestTrace | undefined;
    /** What the request was served, for its one log line once answered; set by serve. */
    served: ServedLine | undefined;
  }
}

/** The one line a served request logs: its event name and fields (the status and time come at the answer). */
export interface ServedLine {
  event: 'embedding_request' | 'rerank_request' | 'classify_request' | 'tokenize_request';
  fields: Record<string, unknown>;
}

/** What a dialect gets back from a model call: the results, aligned with its inputs, and the tokens used in all. */
export interface Served<T> {
  /** The served model's own name, also when the request used an alias or named none. */
  model: string;
  items: T[];
  /** Tokens the request used in all, special tokens and prompts included: what usage reports. */
  tokens: number;
}

/**
 * The model a request addresses: the named one (or alias), or for a request naming none, the
 * default for `capability` (see ModelRegistry.resolve). Labels the request's metrics with it.
 */
export function modelFor(request: FastifyRequest, name: string | undefined, capability: string): ModelService {
  const model = request.server.registry.resolve(name, capability);
  request.modelName = model.name;
  return model;
}

/** What the service needs from a request: its id, a signal for a client that left, its trace, and the dialect's names for its inputs. */
export function callContext(request: FastifyRequest, inputs?: InputNames): CallContext {
  return { requestId: request.id, signal: request.abortSignal, trace: request.trace, inputs };
}

/**
 * Runs one request's call on its model and records the request's one log line, which the app
 * writes when the answer goes out (http/app.ts). A failure is logged once, rate-limited, by the
 * error handler instead.
 */
export async function serve<T>(request: FastifyRequest, model: ModelService, event: ServedLine['event'],
  fields: Record<string, unknown>, call: (ctx: CallContext) => Promise<Outcome<T>>, inputs?: InputNames): Promise<Served<T>> {
  const out = await call(callContext(request, inputs));
  const tokens = totalTokens(out);
  request.served = {
    event,
    fields: { model: model.name, ...fields, tokens, cache_hits: out.cacheHits, queue_ms: round(out.queueMs), inference_ms: round(out.inferenceMs) },
  };
  return { model: model.name, items: out.items, tokens };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
