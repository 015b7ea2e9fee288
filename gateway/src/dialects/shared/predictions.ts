import { z } from 'zod';
import type { ClassItem } from '../../core/call-specs.ts';

/** One label's score, as TEI and Infinity (transformers' pipeline) list them. */
export const predictionSchema = z.object({ label: z.string(), score: z.number() });

/** One label's score. */
export type Prediction = z.output<typeof predictionSchema>;

/** Every label with its score, best first. */
export function bestFirst({ labels, scores }: ClassItem): Prediction[] {
  return labels.map((label, i) => ({ label, score: scores[i]! })).sort((a, b) => b.score - a.score);
}
