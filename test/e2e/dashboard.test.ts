import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, MODEL, ROOT, type RunningServer, startServer } from './server.ts';
import { prepareStandins } from './standins.ts';

// The dashboard in a real headless Chromium (Debian's package, which the script installs where
// it is missing), against the real gateway, runners, MiniLM and stand-ins of a reranker and of
// bge-m3 (for sparse output), with an API key set.
const KEY = 'sk-dashboard-test';
const RERANKER = 'ms-marco-minilm-l6-v2';
const SPARSE = 'bge-m3';
const SHOTS = join(ROOT, '.test-results', 'screenshots');

/** What the test reads of a canvas in the page (this project's types have no DOM). */
interface Canvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}

describe('the dashboard in a real browser', () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    const executablePath = execFileSync('bash', [join(ROOT, 'scripts/install_chromium.sh')], { encoding: 'utf8' }).trim();
    const { modelsDir, catalog } = prepareStandins();
    [server, browser] = await Promise.all([
      startServer({ API_KEY: KEY, EMBEDDING_CACHE_SIZE: '0', MODELS: `${MODEL},${RERANKER},${SPARSE}`, MODELS_DIR: modelsDir, MODEL_CONFIG: catalog }),
      chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
    page.on('pageerror', (err) => problems.push(`page: ${err.message}`));
    page.on('requestfailed', (req) => problems.push(`request: ${req.url()}`));
    mkdirSync(SHOTS, { recursive: true });
  }, 600_000);
  afterAll(async () => {
    await browser?.close();
    expect(await server.stop()).toBe(0);
  });

  it('asks for the key, says clearly when it is wrong, and works once the right one is given', async () => {
    await page.goto(server.url);
    const form = page.locator('#key-form');
    await form.waitFor({ state: 'visible' });
    await page.getByLabel('Key', { exact: true }).fill('not-the-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await expect.poll(() => page.locator('#key-error').textContent()).toContain('That key was refused');
    await page.screenshot({ path: join(SHOTS, 'dashboard-key.png') });
    await page.getByLabel('Key', { exact: true }).fill(KEY);
    await page.getByRole('button', { name: 'Use key' }).click();
    await form.waitFor({ state: 'hidden' });
    // The browser's own 401 lines for the refused calls are expected; nothing else may fail.
    problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  });

  it('shows the model ready, and the throughput chart moves once traffic is sent', async () => {
    const card = page.locator(`.card[data-model="${MODEL}"]`);
    await expect.poll(() => card.locator('.state').textContent(), { timeout: 10_000 }).toBe('ready');
    const throughput = page.locator('#chart-throughput');
    // What a screen reader hears for the chart: its description names the latest values.
    const describedBy = await throughput.getAttribute('aria-describedby');
    const requestsPerS = async () => Number(/([\d.]+) requests\/s/.exec((await page.locator(`#${describedBy}`).textContent()) ?? '')?.[1] ?? NaN);
    await expect.poll(requestsPerS, { timeout: 10_000 }).toBe(0);
    const sending = (async () => {
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`${server.url}/v1/embeddings`, {
          method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
          body: JSON.stringify({ model: MODEL, input: [`text number ${i}`, 'another one'] }),
        });
        expect(res.status).toBe(200);
        await new Promise((r) => setTimeout(r, 75));
      }
    })();
    await expect.poll(requestsPerS).toBeGreaterThan(0);
    await sending;
    // The chart itself was drawn: uPlot's canvas has pixels that are not the background.
    const drawn = await throughput.locator('canvas').evaluate((c: Canvas) =>
      c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0));
    expect(drawn).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  const post = async (path: string, body: unknown) => (await fetch(`${server.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(body),
  })).json() as Promise<any>;

  it('draws an N x N similarity heatmap whose cells are the cosines of /v1/embeddings\' vectors', async () => {
    const texts = ['A cat sits on the mat.', 'A kitten rests on a rug.', 'Stock markets fell sharply today.', 'The weather is sunny.'];
    await page.getByLabel('Texts, one per line').fill(texts.join('\n'));
    await page.getByRole('button', { name: 'Compare' }).click();
    const cells = page.locator('#sim-table td[data-value]');
    await expect.poll(() => cells.count()).toBe(texts.length ** 2);
    const shown = (await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('data-value')))));
    const vectors = (await post('/v1/embeddings', { model: MODEL, input: texts })).data.map((d: any) => d.embedding);
    texts.forEach((_, i) => texts.forEach((_, j) => expect(shown[i * texts.length + j]).toBeCloseTo(cosine(vectors[i], vectors[j]), 5)));
    expect(await page.locator('#sim-snippet').textContent()).toContain('client.embeddings.create(model="all-minilm-l6-v2"');
    // Sparse output, where the model has it: cosines over the token weights the API returns.
    await page.locator('#sim-model').selectOption(SPARSE);
    await page.locator('#sim-kind').selectOption('sparse');
    await page.getByRole('button', { name: 'Compare' }).click();
    await expect.poll(() => page.locator('#sim-snippet').textContent()).toContain('"embedding_type": "sparse"');
    const sparse = (await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('data-value')))));
    const weights = (await post('/v1/embeddings', { model: SPARSE, input: texts, embedding_type: 'sparse' })).data
      .map((d: any) => new Map<number, number>(d.embedding.indices.map((i: number, k: number) => [i, d.embedding.values[k]])));
    const sparseCosine = (a: Map<number, number>, b: Map<number, number>) => {
      let dot = 0;
      for (const [i, x] of a) dot += x * (b.get(i) ?? 0);
      const norm = (m: Map<number, number>) => Math.sqrt([...m.values()].reduce((n, x) => n + x * x, 0));
      return dot / (norm(a) * norm(b) || 1);
    };
    texts.forEach((_, i) => texts.forEach((_, j) => expect(sparse[i * texts.length + j]).toBeCloseTo(sparseCosine(weights[i], weights[j]), 5)));
    expect(problems).toEqual([]);
  });

  it('shows reranked documents in score order, as /v1/rerank ranks them, and a text\'s tokens', async () => {
    // The only reranker is chosen already (its list offers nothing else).
    expect(await page.locator('#rank-model').inputValue()).toBe(RERANKER);
    await page.getByRole('button', { name: 'Rank' }).click();
    const items = page.locator('#rank-results li');
    await expect.poll(() => items.count()).toBe(3);
    const scores = await items.evaluateAll((lis) => lis.map((li) => Number(li.getAttribute('data-score'))));
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const query = await page.getByLabel('Query').inputValue();
    const documents = (await page.getByLabel('Documents, one per line').inputValue()).split('\n');
    const ranked = (await post('/v1/rerank', { model: RERANKER, query, documents })).results;
    expect((await items.allTextContents()).map((t) => t.replace(/^[-\d.]+/, ''))).toEqual(ranked.map((r: any) => documents[r.index]));
    scores.forEach((score, i) => expect(score).toBeCloseTo(ranked[i].relevance_score, 5));
    await page.getByRole('button', { name: 'Tokenise' }).click();
    const text = await page.getByLabel('Text', { exact: true }).inputValue();
    const tokens = (await post('/tokenize', { model: MODEL, content: text, add_special: true, with_pieces: true })).tokens;
    await expect.poll(() => page.locator('#tok-pieces li').allTextContents()).toEqual(tokens.map((t: any) => t.piece));
    expect(await page.locator('#tok-count').textContent()).toBe(`${tokens.length} tokens, of the 256 this model reads`);
    await page.locator('#sim-table').screenshot({ path: join(SHOTS, 'dashboard-heatmap.png') });
    await page.screenshot({ path: join(SHOTS, 'dashboard-playground.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(SHOTS, 'dashboard-dark.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
