import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, logLines, MODEL, reference, type RunningServer, startServer } from './server.ts';

const PASSAGE = 'Fault isolation keeps one client from breaking the answers of the others in its batch. ';
/** Far past all-MiniLM-L6-v2's 256 tokens. */
const OVERLONG = 'overlong '.repeat(600);

async function post(server: RunningServer, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/embeddings`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('one bad input fails only its own request', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ EMBEDDING_CACHE_SIZE: '0', BATCH_WINDOW_MS: '20' });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('fails only the request with an over-long input, naming its own index, while 90 others sharing its batches succeed', async () => {
    const innocent = Array.from({ length: 90 }, (_, i) => `innocent ${i}: ${PASSAGE}`);
    const expected = reference(innocent);
    const offenders = [
      post(server, { model: MODEL, input: ['short one', 'short two', OVERLONG, 'short three'], truncate: false }, { 'x-request-id': 'offender-1' }),
      post(server, { model: MODEL, input: [OVERLONG], truncate: false }, { 'x-request-id': 'offender-2' }),
    ];
    // The same options as the offenders, so that they may share runner calls.
    const answers = innocent.map((text, i) => post(server, { model: MODEL, input: text, truncate: false }, { 'x-request-id': `innocent-${i}` }));
    const [first, second] = await Promise.all(offenders);
    const results = await Promise.all(answers);

    expect(first!.status).toBe(400);
    expect(first!.body.error).toMatchObject({ type: 'invalid_request_error', param: 'input', code: 'input_too_long' });
    expect(first!.body.error.message).toMatch(/^input\[2\] has \d+ tokens, more than this model's 256/);
    expect(second!.status).toBe(400);
    expect(second!.body.error.message).toMatch(/^input\[0\] has /);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(cosine(r.body.data[0].embedding, expected[i]!)).toBeGreaterThan(0.9999);
    });
    // The offenders really did share runner calls with innocent requests.
    await new Promise((r) => setTimeout(r, 200));
    const shared = logLines(server, 'batch_done').map((l) => String(l.request_id).split(','))
      .filter((ids) => ids.some((id) => id.startsWith('offender')) && ids.some((id) => id.startsWith('innocent')));
    expect(shared.length).toBeGreaterThan(0);
  });

  it('refuses a lone surrogate before it reaches a shared batch', async () => {
    const [bad, good] = await Promise.all([
      post(server, '{"model": "' + MODEL + '", "input": ["fine", "x\\ud800y"]}'),
      post(server, { model: MODEL, input: 'a neighbour' }),
    ]);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_unicode', param: 'input' });
    expect(bad.body.error.message).toMatch(/^input\[1\] is not well-formed Unicode/);
    expect(good.status).toBe(200);
  });
});

describe('deadlines and fairness', () => {
  let server: RunningServer;
  beforeAll(async () => {
    // Calls of 8 inputs: a one-text request never waits long for a free slot, while a request
    // of 160 long inputs takes several times QUEUE_TIMEOUT_MS.
    server = await startServer({ EMBEDDING_CACHE_SIZE: '0', BATCH_WINDOW_MAX_SIZE: '8', QUEUE_TIMEOUT_MS: '2000' });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('lets a started request run past QUEUE_TIMEOUT_MS, and serves a one-text request in between', async () => {
    const big = Array.from({ length: 160 }, (_, i) => `${i} ${PASSAGE.repeat(12)}`);
    const startedAt = performance.now();
    let largeDone = false;
    const large = post(server, { model: MODEL, input: big }).then((r) => {
      largeDone = true;
      return { ...r, ms: performance.now() - startedAt };
    });
    await new Promise((r) => setTimeout(r, 300));
    const small = await post(server, { model: MODEL, input: 'a quick question' });
    const smallBeforeLarge = !largeDone;
    const done = await large;
    expect(done.status).toBe(200);
    expect(done.body.data).toHaveLength(160);
    expect(done.ms).toBeGreaterThan(2000); // longer than QUEUE_TIMEOUT_MS, which bounds only the wait
    expect(small.status).toBe(200);
    expect(smallBeforeLarge).toBe(true);
  });
});
