import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines, ROOT, type RunningServer, startServer } from './server.ts';

// The classifier stand-ins of scripts/make_standins.py, served under their catalog names: a
// single-label sentiment model, a multi-label one, and an NLI model that reads text pairs.
const SST2 = 'distilbert-sst-2';
const EMOTIONS = 'roberta-base-go-emotions';
const NLI = 'nli-distilroberta-base';
const PYTHON = join(ROOT, '.venv/bin/python');
const TEXTS = ['I love this movie, it is wonderful', 'terrible awful bad', 'the weather report said it might rain'];
const PAIR: [string, string] = ['A man is eating pasta.', 'Someone is eating.'];
/** Far past the stand-ins' 512 tokens. */
const OVERLONG = 'a very long review about many different things '.repeat(80);
/** The server and the reference agree to float32 rounding. */
const ATOL = 1e-5;

const INNOCENT = Array.from({ length: 40 }, (_, i) => `innocent review number ${i}: ${TEXTS[i % 3]}`);

type Input = string | [string, string];
type Scores = Record<string, number>;
/** What the reference says of each input: scores with the model's activation, and logits. */
type Reference = { scores: Scores[]; logits: Scores[] };

let modelsDir: string;
const references = new Map<string, { inputs: string[]; answer: Reference }>();

/** Runs transformers' pipeline once per model over every input the tests ask it about. */
function computeReferences(inputs: Record<string, Input[]>): void {
  for (const [model, list] of Object.entries(inputs)) {
    const out = execFileSync(PYTHON, ['test/e2e/reference_classify.py', join(modelsDir, model)], {
      cwd: ROOT, input: JSON.stringify(list), env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_DISABLE_PROGRESS_BARS: '1' },
    });
    references.set(model, { inputs: list.map((x) => JSON.stringify(x)), answer: JSON.parse(out.toString()) as Reference });
  }
}

/** The pipeline's {label: score} for each input, on the weights the runner loads; logits if raw. */
function reference(model: string, inputs: Input[], raw = false): Scores[] {
  const known = references.get(model)!;
  return inputs.map((x) => {
    const at = known.inputs.indexOf(JSON.stringify(x));
    if (at < 0) throw new Error(`no reference for ${JSON.stringify(x)} on ${model}; add it to computeReferences`);
    return (raw ? known.answer.logits : known.answer.scores)[at]!;
  });
}

async function post(server: RunningServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

/** A best-first [{label, score}] list: every label once, sorted, matching the reference. */
function expectPredictions(predictions: { label: string; score: number }[], want: Scores): void {
  expect(predictions.map((p) => p.label).sort()).toEqual(Object.keys(want).sort());
  const scores = predictions.map((p) => p.score);
  expect(scores).toEqual([...scores].sort((a, b) => b - a));
  for (const { label, score } of predictions) expect(Math.abs(score - want[label]!), label).toBeLessThan(ATOL);
}

describe('sequence classifiers in the TEI, Infinity and vLLM dialects', () => {
  let server: RunningServer;

  beforeAll(async () => {
    modelsDir = join(mkdtempSync(join(tmpdir(), 'classifiers-')), 'models');
    execFileSync(PYTHON, ['scripts/make_standins.py', '--out', modelsDir, SST2, EMOTIONS, NLI], { cwd: ROOT, stdio: 'ignore' });
    computeReferences({ [SST2]: [...TEXTS, ...INNOCENT], [EMOTIONS]: TEXTS, [NLI]: [PAIR, ...TEXTS] });
    server = await startServer({
      MODELS: [SST2, EMOTIONS, NLI].join(','), MODELS_DIR: modelsDir, WARMUP_STEPS: '1', EMBEDDING_CACHE_SIZE: '0', BATCH_WINDOW_MS: '20',
      DEFAULT_MODEL: SST2,
    }, 170_000);
  }, 180_000);
  afterAll(async () => { expect(await server.stop()).toBe(0); });

  it('lists the classifiers with the classify capability', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
    for (const name of [SST2, EMOTIONS, NLI]) {
      expect(body.data.find((m: any) => m.id === name)).toMatchObject({ capabilities: ['classify'], dimensions: 0, max_tokens: 512 });
    }
  });

  it('is TEI\'s classifier at GET /info and POST /, and the default model for requests naming none', async () => {
    const info = (await (await fetch(`${server.url}/info`)).json()) as any;
    expect(info).toMatchObject({ model_id: SST2, model_type: { classifier: { id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' }, label2id: { NEGATIVE: 0, POSITIVE: 1 } } } });
    const root = await post(server, '/', { inputs: TEXTS[0] });
    expect(root.status).toBe(200);
    expectPredictions(root.body, reference(SST2, [TEXTS[0]!])[0]!);
    expect((await post(server, '/classify', { input: TEXTS[0] })).body.model).toBe(SST2);
  });

  it('answers TEI /predict: one best-first list for one input, a list of lists for a batch, softmax scores as the pipeline gives', async () => {
    const want = reference(SST2, TEXTS);
    const single = await post(server, '/predict', { model: SST2, inputs: TEXTS[0] });
    expect(single.status).toBe(200);
    expectPredictions(single.body, want[0]!);
    expect(single.body.reduce((a: number, p: any) => a + p.score, 0)).toBeCloseTo(1, 5);
    const flat = await post(server, '/predict', { model: SST2, inputs: [TEXTS[1]] });
    expectPredictions(flat.body, want[1]!);
    const batch = await post(server, '/predict', { model: SST2, inputs: TEXTS.map((t) => [t]) });
    expect(batch.body).toHaveLength(3);
    batch.body.forEach((predictions: any, i: number) => expectPredictions(predictions, want[i]!));
    // The stand-in tells inputs apart, so the agreement is not agreement on a constant.
    const positive = batch.body.map((p: any) => p.find((x: any) => x.label === 'POSITIVE').score);
    expect(Math.max(...positive) - Math.min(...positive)).toBeGreaterThan(0.05);
  });

  it('reads TEI text pairs as one sequence, flat or in a batch mixed with lone texts', async () => {
    const want = reference(NLI, [PAIR, TEXTS[0]!]);
    const flat = await post(server, '/predict', { model: NLI, inputs: PAIR });
    expect(flat.status).toBe(200);
    expectPredictions(flat.body, want[0]!);
    const mixed = await post(server, '/predict', { model: NLI, inputs: [PAIR, [TEXTS[0]]] });
    expectPredictions(mixed.body[0], want[0]!);
    expectPredictions(mixed.body[1], want[1]!);
    expect(mixed.body[0][0].label).toMatch(/^(contradiction|entailment|neutral)$/);
  });

  it('gives TEI raw_scores as the logits, and refuses a flat list of three texts', async () => {
    const want = reference(SST2, [TEXTS[0]!], true);
    const raw = await post(server, '/predict', { model: SST2, inputs: TEXTS[0], raw_scores: true });
    expectPredictions(raw.body, want[0]!);
    const three = await post(server, '/predict', { model: SST2, inputs: TEXTS });
    expect(three.status).toBe(400);
    expect(three.body.error.param).toBe('inputs');
  });

  it("answers Infinity's /classify (a body with raw_scores) with every label, best first, sigmoids for a multi-label model", async () => {
    const want = reference(EMOTIONS, TEXTS);
    const res = await post(server, '/classify', { model: EMOTIONS, input: TEXTS, raw_scores: false });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'classify', model: EMOTIONS, id: expect.any(String), created: expect.any(Number) });
    expect(res.body.usage.prompt_tokens).toBeGreaterThan(TEXTS.length);
    expect(res.body.usage.total_tokens).toBe(res.body.usage.prompt_tokens);
    expect(res.body.data).toHaveLength(3);
    res.body.data.forEach((predictions: any, i: number) => {
      expect(predictions).toHaveLength(28);
      expectPredictions(predictions, want[i]!);
    });
    // Independent sigmoids, not a softmax: the labels' scores do not sum to 1.
    expect(res.body.data[0].reduce((a: number, p: any) => a + p.score, 0)).toBeGreaterThan(2);
    const raw = await post(server, '/v1/classify', { model: EMOTIONS, input: TEXTS[0], raw_scores: true });
    expect(raw.body.object).toBe('classify');
    expectPredictions(raw.body.data[0], reference(EMOTIONS, [TEXTS[0]!], true)[0]!);
  });

  it("answers vLLM's /classify and /v1/classify (no raw_scores) with probs in label order and the best label", async () => {
    const want = reference(NLI, TEXTS);
    const labels = ['contradiction', 'entailment', 'neutral'];
    for (const path of ['/classify', '/v1/classify']) {
      const res = await post(server, path, { model: NLI, input: TEXTS });
      expect(res.status, path).toBe(200);
      expect(res.body).toMatchObject({ object: 'list', model: NLI, id: expect.any(String), created: expect.any(Number) });
      expect(res.body.usage).toMatchObject({ completion_tokens: 0, prompt_tokens_details: null });
      expect(res.body.usage.total_tokens).toBe(res.body.usage.prompt_tokens);
      res.body.data.forEach((d: any, i: number) => {
        expect(d).toMatchObject({ index: i, num_classes: 3 });
        d.probs.forEach((p: number, k: number) => expect(Math.abs(p - want[i]![labels[k]!]!)).toBeLessThan(ATOL));
        expect(d.label).toBe(labels[d.probs.indexOf(Math.max(...d.probs))]);
      });
    }
    const one = await post(server, '/v1/classify', { model: NLI, input: TEXTS[0] });
    expect(one.body.data).toHaveLength(1);
    const logits = await post(server, '/v1/classify', { model: NLI, input: TEXTS[0], use_activation: false });
    const wantLogits = reference(NLI, [TEXTS[0]!], true)[0]!;
    logits.body.data[0].probs.forEach((p: number, k: number) => expect(Math.abs(p - wantLogits[labels[k]!]!)).toBeLessThan(1e-4));
  });

  it('keeps classifiers and embedders apart', async () => {
    const embed = await post(server, '/v1/embeddings', { model: SST2, input: 'x' });
    expect(embed.status).toBe(400);
    expect(embed.body.error.code).toBe('unsupported_model_capability');
  });

  it('fails only the request with an over-long input, naming its own index, while concurrent requests sharing its batches succeed', async () => {
    const want = reference(SST2, INNOCENT);
    const headers = (id: string) => ({ 'x-request-id': id });
    const offenders = [
      post(server, '/v1/classify', { model: SST2, input: ['short one', 'short two', OVERLONG, 'short three'], truncate: false }, headers('offender-vllm')),
      post(server, '/predict', { model: SST2, inputs: [['fine'], [OVERLONG]], truncate: false }, headers('offender-tei')),
    ];
    // The same options as the offenders, so that they may share runner calls.
    const answers = INNOCENT.map((text, i) => post(server, '/v1/classify', { model: SST2, input: text, truncate: false }, headers(`innocent-${i}`)));
    const [vllm, tei] = await Promise.all(offenders);
    const results = await Promise.all(answers);

    expect(vllm!.status).toBe(400);
    expect(vllm!.body.error).toMatchObject({ type: 'invalid_request_error', param: 'input', code: 'input_too_long' });
    expect(vllm!.body.error.message).toMatch(/^input\[2\] has \d+ tokens, more than this model's 512/);
    expect(tei!.status).toBe(400);
    // TEI's field is `inputs`, and the error names it so.
    expect(tei!.body.error).toMatchObject({ param: 'inputs', code: 'input_too_long' });
    expect(tei!.body.error.message).toMatch(/^inputs\[1\] has /);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(Math.abs(r.body.data[0].probs[1] - want[i]!.POSITIVE!)).toBeLessThan(ATOL);
    });
    // The offenders really did share runner calls with innocent requests.
    await new Promise((r) => setTimeout(r, 200));
    const shared = logLines(server, 'batch_done').map((l) => String(l.request_id).split(','))
      .filter((ids) => ids.some((id) => id.startsWith('offender')) && ids.some((id) => id.startsWith('innocent')));
    expect(shared.length).toBeGreaterThan(0);
  });
});
