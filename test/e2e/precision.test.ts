import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, logLines, MODEL, reference, ROOT, type RunningServer, startServer } from './server.ts';

/** The real weights linked into a folder of their own, so that the int8 cache starts empty there. */
function modelsCopy(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'int8-')), 'models');
  mkdirSync(join(dir, MODEL), { recursive: true });
  for (const name of readdirSync(join(ROOT, 'models', MODEL))) {
    if (name !== '.edge-embed-int8') symlinkSync(join(ROOT, 'models', MODEL, name), join(dir, MODEL, name));
  }
  return dir;
}

describe('PRECISION=int8 on the real gateway', () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = modelsCopy();
    server = await startServer({ PRECISION: 'int8', MODELS_DIR: dir, WARMUP_STEPS: '1' });
  }, 180_000);
  afterAll(async () => {
    await server.stop();
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('reports the precision and the measured fidelity in /v1/models and in the runner\'s log', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
    const model = body.data[0];
    expect(model.precision).toBe('int8');
    expect(model.precision_detail).toMatch(/^openvino int8 weights, (f32|bf16) activations$/);
    expect(model.fidelity.mean_cosine).toBeGreaterThanOrEqual(0.999);
    expect(model.fidelity.worst_cosine).toBeGreaterThanOrEqual(0.995);
    expect(model.fidelity.top10_overlap).toBeGreaterThanOrEqual(0.95);
    const line = logLines(server, 'precision')[0]!;
    expect(line).toMatchObject({ precision: 'int8', converted: true });
    // int8 weighs only its own candidates; fp32 is timed only when auto has to choose.
    expect(Object.keys(line.candidates as object)).toContain('int8/f32');
    expect(Object.keys(line.candidates as object)).not.toContain('fp32');
  });

  it('embeds within the gate of sentence-transformers\' fp32 vectors', async () => {
    const texts = ['The quick brown fox jumps over the lazy dog.', 'int8 weights, float activations'];
    const res = await fetch(`${server.url}/v1/embeddings`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: texts }),
    });
    const data = ((await res.json()) as any).data as { embedding: number[] }[];
    const want = reference(texts);
    data.forEach((d, i) => expect(cosine(d.embedding, want[i]!)).toBeGreaterThanOrEqual(0.995));
  });

  it('refuses to start, saying by how much, when the int8 path misses the gate', () => {
    const res = spawnSync(process.execPath, ['gateway/src/main.ts'], {
      cwd: ROOT, encoding: 'utf8', timeout: 120_000,
      env: { ...process.env, MODELS: MODEL, MODELS_DIR: dir, PORT: '0', PRECISION: 'int8', FIDELITY_MIN_MEAN_COSINE: '0.9999999' },
    });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/the int8 path is too far from the reference to serve \(mean cosine 0\.99\d+ < 0\.9999999/);
  });
});
