import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODEL, ROOT } from './server.ts';

function gateway(env: Record<string, string | undefined>, args: string[] = []) {
  const started = performance.now();
  const res = spawnSync(process.execPath, ['gateway/src/main.ts', ...args], {
    cwd: ROOT, env: { ...process.env, PORT: '0', ...env }, encoding: 'utf8', timeout: 120_000,
  });
  return { ...res, ms: performance.now() - started };
}

describe('gateway startup', () => {
  it('refuses to start without MODELS and lists the catalog', () => {
    const res = gateway({ MODELS: undefined });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('MODELS (--models): is required');
    expect(res.stderr).toContain(`Models in the catalog: ${MODEL}`);
  });

  it('names the bad setting and its flag', () => {
    const res = gateway({ MODELS: MODEL, MAX_BATCH_SIZE: 'lots' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('MAX_BATCH_SIZE (--max-batch-size)');
  });

  it('refuses a model that is not in the catalog', () => {
    const res = gateway({}, ['--models', 'not-a-model']);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('not in the catalog');
  });

  it('fails fast, showing the runner stderr, when the weights are missing', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-models-'));
    const res = gateway({ MODELS: MODEL, MODELS_DIR: empty, RUNNER_STARTUP_TIMEOUT_S: '60' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(`weights for '${MODEL}' are not in`);
    expect(res.stderr).toContain('npm run download-models');
    // On the runner's exit, not at the end of the startup timeout.
    expect(res.ms).toBeLessThan(60_000);
  });

  it('says in one line which weights are corrupt and how to fetch them again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corrupt-models-'));
    cpSync(join(ROOT, 'models', MODEL), join(dir, MODEL), { recursive: true });
    const weights = join(dir, MODEL, 'model.safetensors');
    truncateSync(weights, 1000);
    const res = gateway({ MODELS: MODEL, MODELS_DIR: dir });
    expect(res.status).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${dir}/${MODEL} are corrupt or incomplete`);
    expect(lines[0]).toContain(`npm run download-models -- ${MODEL} --force`);
  });

  it('names the interpreter and the OS error when the runner cannot be spawned', () => {
    const res = gateway({ MODELS: MODEL, RUNNER_PYTHON: '/nonexistent/python3' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("RUNNER_PYTHON '/nonexistent/python3' failed with ENOENT");
    expect(res.stderr).not.toContain('undefined');
  });

  it('says why it cannot make its socket folder instead of crashing', () => {
    const res = gateway({ MODELS: MODEL, SOCKET_DIR: '/nonexistent/sockets' });
    expect(res.status).toBe(2);
    expect(res.stderr.trim()).toMatch(/^edge-embed: cannot make a private socket folder in \/nonexistent\/sockets \(SOCKET_DIR\): ENOENT/);
  });

  it('prints the settings with --help', () => {
    const res = gateway({}, ['--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('--max-batch-size');
    expect(res.stdout).toContain('default 2048');
  });
});

describe('runtime_config', () => {
  it('never logs the API keys', async () => {
    const { startServer } = await import('./server.ts');
    const server = await startServer({ API_KEY: 'sk-very-secret-key', WARMUP_STEPS: '0' });
    await server.stop();
    const line = server.logs().find((l) => l.includes('runtime_config'))!;
    expect(line).toContain('"API_KEY":"1 key(s)"');
    expect(server.logs().join('\n')).not.toContain('sk-very-secret-key');
  });
});

describe('device pinning', () => {
  it('starts one runner per device and pins cuda:N with CUDA_VISIBLE_DEVICES, the runner seeing cuda:0', async () => {
    const { mkdtempSync: mk, writeFileSync, chmodSync, readFileSync, readdirSync } = await import('node:fs');
    const dir = mk(join(tmpdir(), 'pinning-'));
    // A stand-in interpreter that records how it was started, then fails like a runner that cannot load.
    const fake = join(dir, 'python');
    writeFileSync(fake, `#!/bin/sh\necho "CUDA_VISIBLE_DEVICES=\${CUDA_VISIBLE_DEVICES-unset} $*" > "${dir}/run-$$"\necho "no GPU here" >&2\nexit 3\n`);
    chmodSync(fake, 0o755);
    const res = gateway({ MODELS: MODEL, MODEL_DEVICE: 'cuda:1,cpu', RUNNER_PYTHON: fake });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('no GPU here');
    const runs = readdirSync(dir).filter((f) => f.startsWith('run-')).map((f) => readFileSync(join(dir, f), 'utf8'));
    const cuda = runs.find((r) => r.startsWith('CUDA_VISIBLE_DEVICES=1 '));
    expect(cuda).toContain('--device cuda:0');
    expect(runs.some((r) => r.includes('--device cpu'))).toBe(true);
  });
});
