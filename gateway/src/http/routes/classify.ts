import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ClassifyText, ClassItem } from '../../services/call-specs.ts';
import { totalTokens, type InputNames } from '../../services/model-service.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import {
  infinityClassifyRequestSchema, teiPredictRequestSchema, vllmClassifyRequestSchema,
  type InfinityClassifyResponse, type Prediction, type TeiPredictResponse, type VllmClassifyResponse,
} from '../schemas/classify.ts';
import { parseOrThrow } from '../validate.ts';

/** vLLM serves /classify under both; Infinity serves /classify (and /v1/classify with its /v1 prefix). */
export const CLASSIFY_PATHS = ['/classify', '/v1/classify'];

/** What the three dialects share once parsed. */
interface ClassifyCall {
  model: string | undefined;
  inputs: ClassifyText[];
  raw: boolean;
  truncate: boolean | undefined;
  truncationDirection: string | undefined;
  /** The dialect's names for its inputs in errors; OpenAI's `input[i]` when absent. */
  names?: InputNames;
}

/** Classifies with the addressed model and logs one classify_request line. */
async function classify(app: FastifyInstance, request: FastifyRequest, call: ClassifyCall) {
  const model = modelFor(app, request, call.model, 'classify');
  // A failure is logged once, rate-limited, by the error handler.
  const out = await model.classify(call.inputs, {
    raw: call.raw, truncate: call.truncate, truncateLeft: call.truncationDirection?.toLowerCase() === 'left',
  }, { ...callContext(request), inputs: call.names });
  const tokens = totalTokens(out);
  request.log.info({ model: model.name, inputs: call.inputs.length, tokens, queue_ms: out.queueMs, inference_ms: out.inferenceMs, status: 200 }, 'classify_request');
  return { model: model.name, items: out.items, tokens };
}

/**
 * TEI's POST /predict, also what TEI's root route does for a classifier; `fallback` is the model
 * for a body naming none when the caller has already chosen it.
 */
export async function teiPredict(app: FastifyInstance, request: FastifyRequest, fallback?: string): Promise<TeiPredictResponse> {
  const body = parseOrThrow(teiPredictRequestSchema, request.body);
  const batch = Array.isArray(body.inputs) && Array.isArray(body.inputs[0]);
  const sequences = (batch ? body.inputs : [body.inputs]) as (string | string[])[];
  const { items } = await classify(app, request, {
    model: body.model ?? fallback, inputs: sequences.map(asText), raw: body.raw_scores,
    truncate: body.truncate, truncationDirection: body.truncation_direction,
    // TEI's field is `inputs`; a single input is inputs itself.
    names: { param: 'inputs', name: (i) => (batch ? `inputs[${i}]` : 'inputs') },
  });
  const predictions = items.map(bestFirst);
  return batch ? predictions : predictions[0]!;
}

/**
 * Sequence classification in the shapes of TEI (POST /predict), Infinity and vLLM (POST
 * /classify). The two /classify dialects are told apart by `raw_scores`: Infinity's request
 * model has it (and its clients always send it), vLLM's has none, so a body with the field gets
 * Infinity's answer and any other gets vLLM's.
 */
export default async function classifyRoutes(app: FastifyInstance): Promise<void> {
  app.post('/predict', (request) => teiPredict(app, request));

  for (const path of CLASSIFY_PATHS) {
    app.post(path, async (request): Promise<InfinityClassifyResponse | VllmClassifyResponse> => {
      const raw = request.body;
      if (raw !== null && typeof raw === 'object' && 'raw_scores' in raw) {
        const body = parseOrThrow(infinityClassifyRequestSchema, raw);
        const { model, items, tokens } = await classify(app, request, {
          model: body.model, inputs: asList(body.input), raw: body.raw_scores,
          truncate: body.truncate, truncationDirection: body.truncation_direction,
        });
        return {
          object: 'classify', data: items.map(bestFirst), model,
          usage: { prompt_tokens: tokens, total_tokens: tokens }, id: request.id, created: now(),
        };
      }
      const body = parseOrThrow(vllmClassifyRequestSchema, raw);
      const { model, items, tokens } = await classify(app, request, {
        model: body.model, inputs: asList(body.input), raw: !(body.use_activation ?? body.softmax ?? body.activation ?? true),
        truncate: body.truncate, truncationDirection: body.truncation_direction,
      });
      return {
        id: request.id, object: 'list', created: now(), model,
        data: items.map(({ labels, scores }, index) => ({ index, label: labels[argmax(scores)]!, probs: scores, num_classes: labels.length })),
        usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0, prompt_tokens_details: null },
      };
    });
  }
}

/** A TEI sequence as a classify input: a lone text, or a (text, text_pair) pair. */
function asText(sequence: string | string[]): ClassifyText {
  if (typeof sequence === 'string') return sequence;
  return sequence.length === 2 ? [sequence[0]!, sequence[1]!] : sequence[0]!;
}

const asList = (input: string | string[]): string[] => (typeof input === 'string' ? [input] : input);

/** Every label with its score, best first, as TEI and Infinity (transformers' pipeline) list them. */
function bestFirst({ labels, scores }: ClassItem): Prediction[] {
  return labels.map((label, i) => ({ label, score: scores[i]! })).sort((a, b) => b.score - a.score);
}

/** The first index of the highest score: the label vLLM names. */
function argmax(scores: number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}

const now = () => Math.floor(Date.now() / 1000);
