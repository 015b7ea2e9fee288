// The dashboard's code, in TypeScript with erasable syntax only: the gateway strips the types
// when it starts (node:module's stripTypeScriptTypes) and serves the result as /ui/app.js, so
// there is no build step, and `tsc -p gateway/ui` checks it.
import type UPlot from 'uplot';
import type { ModelList } from '../src/dialects/openai/model-schemas.ts';
import type { StatsSample } from '../src/core/stats-sample.ts';

declare const uPlot: typeof UPlot;

type Model = ModelList['data'][number];
interface Health { models: Record<string, { runners: { device: string; state: string; restarts: number }[] }> }

/** Where the key lives: this tab's session only, never localStorage. */
const KEY_STORE = 'edge-embed-api-key';
const POLL_MS = 2_000;
const KEEP = 300;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLParagraphElement>('status');
const keyForm = $<HTMLFormElement>('key-form');

/** Answered 401: the page needs a (different) key. */
class NeedsKey extends Error {}

/** The key as a header, when one was given. */
function authHeaders(): Record<string, string> {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** GET path, or POST body to it as JSON, with the key; fails with the server's own error message. */
async function api(path: string, body?: unknown): Promise<Response> {
  const headers = authHeaders();
  const res = await fetch(path, body === undefined ? { headers }
    : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status === 401) throw new NeedsKey(headers.authorization ? 'That key was refused. Check it and try again.' : '');
  if (!res.ok) {
    const error = await res.json().then((b: { error?: { message?: string } }) => b.error?.message).catch(() => undefined);
    throw new Error(error ?? `${path} answered ${res.status}`);
  }
  return res;
}

function askForKey(message: string): void {
  keyForm.hidden = false;
  $('key-error').textContent = message;
  status.textContent = 'Waiting for an API key.';
  $<HTMLInputElement>('key').focus();
}

keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $<HTMLInputElement>('key').value.trim());
  void start();
});

// ---- Models ----

const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

/** Appends name and value to a description list; returns the value's element. */
function field(dl: HTMLElement, name: string, value: string): HTMLElement {
  const dd = Object.assign(document.createElement('dd'), { textContent: value });
  dl.append(Object.assign(document.createElement('dt'), { textContent: name }), dd);
  return dd;
}

let known: Model[] = [];

function renderModels(models: Model[], health: Health | undefined): void {
  const changed = models.map((m) => m.id).join() !== known.map((m) => m.id).join();
  known = models;
  if (changed) fillModelChoices();
  const list = $('models');
  list.replaceChildren(...models.filter((m) => !m.alias_of).map((m) => {
    const card = document.createElement('li');
    card.className = 'card';
    card.dataset.model = m.id;
    const title = document.createElement('h3');
    title.textContent = m.id;
    const dl = document.createElement('dl');
    field(dl, 'State', m.state).className = `state state-${m.state}`;
    if (m.reason) field(dl, 'Why', m.reason);
    field(dl, 'Devices', m.devices.join(', '));
    field(dl, 'Precision', m.precision ? `${m.precision}${m.precision_detail ? ` (${m.precision_detail})` : ''}` : '–');
    field(dl, 'Dimensions', m.dimensions ? String(m.dimensions) : '–');
    field(dl, 'Can', m.capabilities.join(', ') || '–');
    const runners = health?.models?.[m.id]?.runners ?? [];
    field(dl, 'Restarts', String(runners.reduce((n, r) => n + r.restarts, 0)));
    field(dl, 'Memory', m.resident_memory_bytes ? mb(m.resident_memory_bytes) : '–');
    field(dl, 'Keep-alive', m.pinned ? 'pinned' : m.keep_alive < 0 ? 'forever' : `${m.keep_alive} s`);
    card.append(title, dl);
    return card;
  }));
}

/** /health's body, which it sends with 503 too while a model is not ready; undefined if there is none. */
async function health(): Promise<Health | undefined> {
  const res = await fetch('/health', { headers: authHeaders() });
  return res.status === 200 || res.status === 503 ? (res.json() as Promise<Health>) : undefined;
}

async function pollModels(): Promise<void> {
  const [models, runners] = await Promise.all([
    api('/v1/models').then((r) => r.json() as Promise<ModelList>),
    health().catch(() => undefined),
  ]);
  renderModels(models.data, runners);
}

// ---- Playground ----

const lines = (id: string) => $<HTMLTextAreaElement>(id).value.split('\n').map((t) => t.trim()).filter(Boolean);
const select = (id: string) => $<HTMLSelectElement>(id);

function options(el: HTMLSelectElement, values: string[], labels: string[] = values): void {
  el.replaceChildren(...values.map((v, i) => Object.assign(document.createElement('option'), { value: v, textContent: labels[i] })));
  el.disabled = values.length <= 1;
}

/** Each tool offers the models that can do its job, and the similarity tool the chosen model's prompts and sizes. */
function fillModelChoices(): void {
  const can = (capability: string) => known.filter((m) => !m.alias_of && m.capabilities.includes(capability)).map((m) => m.id);
  options(select('sim-model'), [...new Set([...can('text-embedding'), ...can('sparse-embedding')])]);
  options(select('rank-model'), can('rerank'));
  options(select('tok-model'), known.filter((m) => !m.alias_of && m.capabilities.length).map((m) => m.id));
  fillEmbeddingChoices();
}

function fillEmbeddingChoices(): void {
  const model = known.find((m) => m.id === select('sim-model').value);
  const kinds = [['dense', 'text-embedding'], ['sparse', 'sparse-embedding']].filter(([, c]) => model?.capabilities.includes(c!)).map(([k]) => k!);
  options(select('sim-kind'), kinds, kinds.map((k) => (k === 'dense' ? 'dense vectors' : 'sparse lexical weights')));
  options(select('sim-prompt'), ['', ...(model?.prompt_names ?? [])], ['the model\'s default', ...(model?.prompt_names ?? [])]);
  const dims = model?.dimensions ? [model.dimensions, ...model.matryoshka_dims] : [];
  options(select('sim-dims'), dims.map(String), dims.map((d, i) => (i === 0 ? `${d} (full)` : String(d))));
}

select('sim-model').addEventListener('change', fillEmbeddingChoices);
// Sparse weights have no Matryoshka sizes.
select('sim-kind').addEventListener('change', () => {
  select('sim-dims').disabled = select('sim-kind').value === 'sparse' || select('sim-dims').options.length <= 1;
});

/** The call as curl and as openai-python, with the key left as $API_KEY rather than written out. */
function snippet(id: string, path: string, body: Record<string, unknown>, python: string): void {
  const keyed = sessionStorage.getItem(KEY_STORE);
  const json = JSON.stringify(body).replaceAll("'", "'\\''");
  $(id).textContent = `curl -s ${location.origin}${path} -H 'content-type: application/json'` +
    `${keyed ? " -H \"authorization: Bearer $API_KEY\"" : ''} -d '${json}'\n\n` +
    `${keyed ? 'import os\n' : ''}from openai import OpenAI\nclient = OpenAI(base_url="${location.origin}/v1", api_key=${keyed ? 'os.environ["API_KEY"]' : '"unused"'})\n${python}`;
}

/** value as a Python literal. */
function py(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (Array.isArray(value)) return `[${value.map(py).join(', ')}]`;
  if (typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(', ')}}`;
  return JSON.stringify(value);
}

/** Runs a tool's call, showing its error in the tool rather than losing it. */
function tool(form: string, error: string, run: () => Promise<void>): void {
  $(form).addEventListener('submit', (event) => {
    event.preventDefault();
    $(error).textContent = '';
    run().catch((err: Error) => {
      if (err instanceof NeedsKey) askForKey(err.message);
      else $(error).textContent = err.message;
    });
  });
}

/** A dense vector, or a sparse one as {indices, values}. */
type Embedding = number[] | { indices: number[]; values: number[] };

/** Cosine of two embeddings of one kind; a sparse one counts only the indices both share. */
function cosine(a: Embedding, b: Embedding): number {
  const entries = (e: Embedding) => (Array.isArray(e) ? e.map((v, i) => [i, v] as const) : e.indices.map((i, k) => [i, e.values[k]!] as const));
  const other = new Map(entries(b));
  let dot = 0, na = 0, nb = 0;
  for (const [i, x] of entries(a)) { dot += x * (other.get(i) ?? 0); na += x * x; }
  for (const y of other.values()) nb += y * y;
  return dot / (Math.sqrt(na * nb) || 1);
}

tool('sim-form', 'sim-error', async () => {
  const texts = lines('sim-texts');
  const body: Record<string, unknown> = { model: select('sim-model').value, input: texts, encoding_format: 'float' };
  if (select('sim-prompt').value) body.prompt_name = select('sim-prompt').value;
  const sparse = select('sim-kind').value === 'sparse';
  const dims = Number(select('sim-dims').value);
  if (sparse) body.embedding_type = 'sparse';
  else if (dims && dims !== known.find((m) => m.id === body.model)?.dimensions) body.dimensions = dims;
  const out = (await (await api('/v1/embeddings', body)).json()) as { data: { embedding: Embedding }[] };
  const vectors = out.data.map((d) => d.embedding);
  const table = $<HTMLTableElement>('sim-table');
  const caption = table.caption!;
  const head = document.createElement('tr');
  head.append(document.createElement('td'), ...texts.map((_, j) => Object.assign(document.createElement('th'), { scope: 'col', textContent: `#${j + 1}` })));
  const rows = vectors.map((a, i) => {
    const row = document.createElement('tr');
    row.append(Object.assign(document.createElement('th'), { scope: 'row', textContent: `#${i + 1} ${texts[i]}`, title: texts[i] }));
    for (const b of vectors) {
      const value = cosine(a, b);
      const cell = Object.assign(document.createElement('td'), { textContent: value.toFixed(3) });
      cell.dataset.value = String(value);
      cell.style.backgroundColor = `hsl(215 85% ${Math.round(97 - 45 * Math.max(value, 0))}%)`;
      row.append(cell);
    }
    return row;
  });
  table.replaceChildren(caption, head, ...rows);
  const args = [`model=${py(body.model)}`, `input=${py(texts)}`];
  if (body.dimensions) args.push(`dimensions=${body.dimensions}`);
  const extra = Object.fromEntries(Object.entries(body).filter(([k]) => k === 'prompt_name' || k === 'embedding_type'));
  if (Object.keys(extra).length) args.push(`extra_body=${py(extra)}`);
  snippet('sim-snippet', '/v1/embeddings', body, `r = client.embeddings.create(${args.join(', ')})`);
});

tool('rank-form', 'rank-error', async () => {
  const body = { model: select('rank-model').value, query: $<HTMLInputElement>('rank-query').value, documents: lines('rank-docs') };
  const out = (await (await api('/v1/rerank', body)).json()) as { results: { index: number; relevance_score: number }[] };
  $('rank-results').replaceChildren(...out.results.map((r) => {
    const li = document.createElement('li');
    li.dataset.score = String(r.relevance_score);
    li.append(Object.assign(document.createElement('span'), { className: 'score', textContent: r.relevance_score.toFixed(4) }),
      body.documents[r.index]!);
    return li;
  }));
  snippet('rank-snippet', '/v1/rerank', body, `r = client.post("/rerank", body=${py(body)}, cast_to=object)`);
});

tool('tok-form', 'tok-error', async () => {
  const model = select('tok-model').value;
  const body = { model, content: $<HTMLTextAreaElement>('tok-text').value, add_special: true, with_pieces: true };
  const out = (await (await api('/tokenize', body)).json()) as { tokens: { id: number; piece: string }[] };
  const limit = known.find((m) => m.id === model)?.max_tokens;
  $('tok-count').textContent = `${out.tokens.length} tokens${limit ? `, of the ${limit} this model reads` : ''}`;
  $('tok-pieces').replaceChildren(...out.tokens.map((t) => {
    const li = document.createElement('li');
    li.append(Object.assign(document.createElement('code'), { textContent: t.piece, title: `id ${t.id}` }));
    return li;
  }));
  snippet('tok-snippet', '/tokenize', body, `r = client.with_options(base_url="${location.origin}").post("/tokenize", body=${py(body)}, cast_to=object)`);
});

// ---- Traffic ----

interface Chart {
  plot: UPlot;
  /** The sample's values this chart draws, one per series after time. */
  pick: (s: StatsSample) => (number | null)[];
  /** What a screen reader hears instead of the canvas: the latest values. */
  describe: (s: StatsSample) => string;
  /** The chart's description, a hidden element its aria-describedby names. */
  now: HTMLElement;
}

const fmt = (x: number | null, digits = 1) => (x === null ? '–' : x.toFixed(digits));
const charts: Chart[] = [];
const times: number[] = [];
const columns = new Map<Chart, (number | null)[][]>();

function chart(id: string, labels: string[], pick: Chart['pick'], describe: Chart['describe'], right?: string): void {
  const el = $(id);
  const colors = ['#0b57d0', '#c5221f', '#1a7f37', '#9a6700'];
  const plot = new uPlot({
    width: Math.max(el.clientWidth, 300), height: 180,
    scales: { x: { time: true } },
    axes: [{}, {}, ...(right ? [{ scale: right, side: 1 as const, grid: { show: false } }] : [])],
    series: [{}, ...labels.map((label, i) => ({
      label, stroke: colors[i % colors.length], width: 1.5,
      scale: right && i === labels.length - 1 ? right : 'y', spanGaps: false,
    }))],
  }, [[], ...labels.map(() => [])], el);
  const c = { plot, pick, describe, now: $(`${id}-now`) };
  charts.push(c);
  columns.set(c, labels.map(() => []));
}

/** Starts the series again from these samples, as after the stream was lost for a while. */
function reset(samples: StatsSample[]): void {
  times.length = 0;
  for (const cols of columns.values()) for (const col of cols) col.length = 0;
  add(samples);
}

function add(samples: StatsSample[]): void {
  for (const s of samples) {
    times.push(s.t / 1000);
    for (const c of charts) c.pick(s).forEach((v, i) => columns.get(c)![i]!.push(v));
  }
  if (times.length > KEEP) {
    const drop = times.length - KEEP;
    times.splice(0, drop);
    for (const cols of columns.values()) for (const col of cols) col.splice(0, drop);
  }
  const last = samples.at(-1);
  for (const c of charts) {
    c.plot.setData([times, ...columns.get(c)!] as UPlot.AlignedData);
    if (last) c.now.textContent = c.describe(last);
  }
  if (last) renderNow(last);
}

function renderNow(s: StatsSample): void {
  const dl = $('now');
  dl.replaceChildren();
  field(dl, 'Requests/s', fmt(s.requests_per_s));
  field(dl, 'Inputs/s', fmt(s.inputs_per_s));
  field(dl, 'Tokens/s', fmt(s.tokens_per_s, 0));
  field(dl, 'p50 / p99', `${fmt(s.latency_p50_ms)} / ${fmt(s.latency_p99_ms)} ms`);
  field(dl, 'Queue', String(s.queue_depth));
  field(dl, 'Cache hits', s.cache_hit_rate === null ? '–' : `${Math.round(s.cache_hit_rate * 100)}%`);
}

/** Reads the server-sent events of /stats/stream through fetch, which, unlike EventSource, can send the key. */
async function stream(): Promise<void> {
  const res = await api('/stats/stream');
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').find((line) => line.startsWith('data: '));
      if (event.startsWith('event: sample') && data) add([JSON.parse(data.slice(6)) as StatsSample]);
    }
  }
}

// ---- Start ----

let live = false;

function makeCharts(): void {
  chart('chart-throughput', ['requests/s', 'inputs/s', 'tokens/s'], (s) => [s.requests_per_s, s.inputs_per_s, s.tokens_per_s],
    (s) => `Throughput now: ${fmt(s.requests_per_s)} requests/s, ${fmt(s.inputs_per_s)} inputs/s, ${fmt(s.tokens_per_s, 0)} tokens/s`, 'tokens');
  chart('chart-latency', ['p50 ms', 'p99 ms'], (s) => [s.latency_p50_ms, s.latency_p99_ms],
    (s) => `Latency now: p50 ${fmt(s.latency_p50_ms)} ms, p99 ${fmt(s.latency_p99_ms)} ms`);
  chart('chart-queue', ['queue depth', 'inputs per call'], (s) => [s.queue_depth, s.batch_inputs_mean],
    (s) => `Queue depth now ${s.queue_depth}, ${fmt(s.batch_inputs_mean)} inputs per runner call`);
  chart('chart-errors', ['429s', '503s', 'cache hit %'], (s) => [s.rejected_429, s.rejected_503, s.cache_hit_rate === null ? null : s.cache_hit_rate * 100],
    (s) => `Now: ${s.rejected_429} answered 429, ${s.rejected_503} answered 503, cache hit rate ${s.cache_hit_rate === null ? 'none' : `${Math.round(s.cache_hit_rate * 100)}%`}`, 'rate');
}

/** Says what went wrong: the key form for a refused key, else the status line. */
function trouble(err: unknown): void {
  if (err instanceof NeedsKey) askForKey(err.message);
  else status.textContent = `Lost contact with the server (${(err as Error).message}); retrying.`;
}

/** Loads the last minutes, then follows the stream; after a loss, starts again from the last minutes, so no gap is drawn over. */
async function follow(): Promise<void> {
  for (;;) {
    try {
      reset(((await (await api('/stats')).json()) as { samples: StatsSample[] }).samples);
      await stream();
    } catch (err) {
      trouble(err);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function start(): Promise<void> {
  try {
    await pollModels();
  } catch (err) {
    trouble(err);
    if (!(err instanceof NeedsKey)) setTimeout(() => void start(), POLL_MS);
    return;
  }
  keyForm.hidden = true;
  status.textContent = 'Live.';
  if (live) return;
  live = true;
  makeCharts();
  setInterval(() => pollModels().then(() => { if (keyForm.hidden) status.textContent = 'Live.'; }, trouble), POLL_MS);
  void follow();
}

void start();
