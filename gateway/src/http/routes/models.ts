import type { FastifyInstance } from 'fastify';
import type { ModelService } from '../../services/model-service.ts';
import type { ModelList } from '../schemas/models.ts';

// Models have no creation date of their own; the gateway's start time stands in for it.
const STARTED = Math.floor(Date.now() / 1000);

/** One entry of the list: a served model under its own name or under an alias. */
export function describeModel(id: string, m: ModelService, aliasOf: string | null): ModelList['data'][number] {
  return {
    id,
    object: 'model',
    created: STARTED,
    owned_by: 'edge-embed',
    dimensions: m.info?.dimensions ?? null,
    max_tokens: m.info?.max_tokens ?? null,
    capabilities: m.info?.capabilities ?? [],
    prompt_names: m.info?.prompt_names ?? [],
    matryoshka_dims: m.info?.matryoshka_dims ?? [],
    ready: m.ready,
    state: m.lifecycle.state,
    reason: m.lifecycle.reason ?? null,
    devices: m.runners.map((r) => r.device),
    resident_memory_bytes: m.lifecycle.residentBytes(),
    last_used: m.lifecycle.lastUsed === undefined ? null : Math.floor(m.lifecycle.lastUsed / 1000),
    keep_alive: m.lifecycle.keepAliveS,
    pinned: m.lifecycle.pinned,
    precision: m.info?.precision || null,
    precision_detail: m.info?.precision_detail || null,
    fidelity: m.info?.fidelity ?? null,
    device_profiles: m.runners.flatMap((r) => {
      const p = r.state === 'ready' ? r.info?.profile : null;
      return p ? [{ device: r.device, host_compute: p.host_compute, pass_ms: p.pass_ms, token_us: p.token_us,
        overhead_tokens: p.overhead_tokens, width_multiple: p.width_multiple, concurrency: p.concurrency, call_tokens: p.call_tokens }] : [];
    }),
    alias_of: aliasOf,
  };
}

/**
 * GET /v1/models: every servable model, loaded or not, in OpenAI's list shape, with their vector sizes, then each
 * alias as a model of its own, since clients check the name they hard-code against this list.
 */
export default async function modelsRoute(app: FastifyInstance): Promise<void> {
  app.get('/v1/models', async (): Promise<ModelList> => ({
    object: 'list',
    data: [
      ...app.registry.models.map((m) => describeModel(m.name, m, null)),
      ...[...app.registry.aliases].map(([alias, name]) => describeModel(alias, app.registry.get(name), name)),
    ],
  }));
}
