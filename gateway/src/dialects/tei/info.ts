import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { Operation } from '../operation.ts';
import { teiInfoSchema, type TeiInfo } from './schemas.ts';

const VERSION = '0.1.0';

/** The runner's pooling name (sentence-transformers') in TEI's spelling. */
const teiPooling = (pooling: string) => (pooling === 'lasttoken' ? 'last_token' : pooling || 'cls');

/** TEI's GET /info describes its one model; with several served, this describes the primary one. */
function info(request: FastifyRequest): TeiInfo {
  const { registry, settings } = request.server;
  const model = registry.primary();
  const info = model.info;
  if (!info) throw new ApiError('unavailable', `Model '${model.name}' is not ready; retry shortly.`, { retryAfterS: 2, code: 'model_unavailable' });
  // A reranker scores with its one label; a classifier lists its own.
  const names = info.labels.length ? info.labels : ['LABEL_0'];
  const labels = { id2label: Object.fromEntries(names.map((l, i) => [String(i), l])), label2id: Object.fromEntries(names.map((l, i) => [l, i])) };
  const kind = info.capabilities.includes('classify') ? { classifier: labels }
    : info.capabilities.includes('rerank') ? { reranker: labels } : { embedding: { pooling: teiPooling(info.pooling) } };
  return {
    model_id: model.name,
    model_sha: null,
    model_dtype: info.dtype,
    model_type: kind,
    max_concurrent_requests: settings.MAX_QUEUE_SIZE,
    max_input_length: info.maxTokens,
    max_batch_tokens: settings.MAX_BATCH_TOKENS,
    max_batch_requests: null,
    max_client_batch_size: settings.MAX_BATCH_SIZE,
    auto_truncate: settings.AUTO_TRUNCATE,
    tokenization_workers: info.concurrency,
    version: VERSION,
    sha: null,
    docker_label: null,
    served_model_name: model.name,
    models: registry.models.map((m) => m.name),
  };
}

/** GET /info. */
export const infoOperation: Operation = {
  method: 'get', path: '/info', tag: 'TEI', summary: 'Model information (TEI)', response: teiInfoSchema, handle: info,
};
