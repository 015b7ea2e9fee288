import type { FastifyRequest } from 'fastify';
import type { ModelService } from '../../core/model-service.ts';
import type { Operation } from '../operation.ts';
import { modelListSchema, type ModelList } from './model-schemas.ts';

// Models have no creation date of their own; the gateway's start time stands in for it.
const STARTED = Math.floor(Date.now() / 1000);

/** One entry of the list: a served model under its own name or under an alias. The admin routes answer with it too. */
export function describeModel(id: string, m: ModelService, aliasOf: string | null): ModelList['data'][number] {
  const info = m.info;
  return {
    id,
    object: 'model',
    created: STARTED,
    owned_by: 'edge-embed',
    dimensions: info?.dimensions ?? null,
    max_tokens: info?.maxTokens ?? null,
    capabilities: info?.capabilities ?? [],
    prompt_names: info?.promptNames ?? [],
    matryoshka_dims: info?.matryoshkaDims ?? [],
    ready: m.ready,
    state: m.lifecycle.state,
    reason: m.lifecycle.reason ?? null,
    devices: m.runnerViews.map((r) => r.device),
    resident_memory_bytes: m.lifecycle.residentBytes(),
    last_used: m.lifecycle.lastUsed === undefined ? null : Math.floor(m.lifecycle.lastUsed / 1000),
    keep_alive: m.lifecycle.keepAliveS,
    pinned: m.lifecycle.pinned,
    precision: info?.precision || null,
    precision_detail: info?.precisionDetail || null,
    fidelity: info?.fidelity ?? null,
    device_profiles: m.runnerViews.flatMap((r) => (r.profile ? [{ device: r.device, ...r.profile }] : [])),
    alias_of: aliasOf,
  };
}

/**
 * GET /v1/models: every servable model, loaded or not, in OpenAI's list shape, with their vector sizes, then each
 * alias as a model of its own, since clients check the name they hard-code against this list.
 */
function listModels(request: FastifyRequest): ModelList {
  const { registry } = request.server;
  return {
    object: 'list',
    data: [
      ...registry.models.map((m) => describeModel(m.name, m, null)),
      ...[...registry.aliases].map(([alias, name]) => describeModel(alias, registry.get(name), name)),
    ],
  };
}

/** OpenAI's model list. */
export const modelOperations: Operation[] = [
  { method: 'get', path: '/v1/models', tag: 'OpenAI', summary: 'Served models', response: modelListSchema, handle: listModels },
];
