import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, logLines, MODEL, startServer, type RunningServer } from './server.ts';

const PASSAGE = 'Supervised runners come back after a crash, and clients are told to retry meanwhile. ';

async function embed(server: RunningServer, input: string[]) {
  const started = performance.now();
  const res = await fetch(`${server.url}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, input }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as any;
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body, ms: performance.now() - started };
}

function runnerPids(server: RunningServer): number[] {
  return logLines(server, 'runner_ready').map((l) => l.pid as number);
}

describe('a runner killed with SIGKILL under load', () => {
  let server: RunningServer;
  const CALL_TIMEOUT_S = 20;

  beforeAll(async () => {
    // No cache, so every request really reaches the runner.
    server = await startServer({ EMBEDDING_CACHE_SIZE: '0', RUNNER_CALL_TIMEOUT_S: String(CALL_TIMEOUT_S) });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('fails the affected requests fast with 503, restarts, serves again, and leaves no orphans', async () => {
    const [firstPid] = runnerPids(server);
    expect(firstPid).toBeGreaterThan(0);

    // Eight clients in closed loops, each request a fresh batch of 16 longer texts.
    const results: Awaited<ReturnType<typeof embed>>[] = [];
    let stop = false;
    let n = 0;
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const batch = Array.from({ length: 16 }, () => `${n++} ${PASSAGE.repeat(6)}`);
        results.push(await embed(server, batch));
      }
    });
    await new Promise((r) => setTimeout(r, 1_500));
    process.kill(firstPid!, 'SIGKILL');
    const killedAt = results.length;
    await new Promise((r) => setTimeout(r, 1_500));
    stop = true;
    await Promise.all(clients);

    const statuses = new Set(results.map((r) => r.status));
    expect([...statuses].every((s) => s === 200 || s === 503)).toBe(true);
    expect(results.slice(0, killedAt).some((r) => r.status === 200)).toBe(true);
    const failed = results.filter((r) => r.status === 503);
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) {
      expect(r.ms).toBeLessThan(CALL_TIMEOUT_S * 1000); // failed by the crash, not by the call's deadline
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(r.body.error.type).toBe('service_unavailable');
    }

    // The supervisor brings a new runner up, and traffic flows again.
    const deadline = Date.now() + 90_000;
    while ((await fetch(`${server.url}/health`)).status !== 200) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 250));
    }
    const pids = runnerPids(server);
    expect(pids).toHaveLength(2);
    expect(pids[1]).not.toBe(firstPid);
    expect(alive(firstPid!)).toBe(false);
    const after = await embed(server, ['back in service']);
    expect(after.status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`runner_restarts_total{model="${MODEL}",device="auto",runner="0"} 1`);

    expect(await server.stop()).toBe(0);
    expect(alive(pids[1]!)).toBe(false);
  });
});

describe('a runner stopped with SIGSTOP', () => {
  it('fails its call at the deadline, sends it nothing more until it answers a probe, and takes it back when it does', async () => {
    // One call at a time, so the second request waits in the gateway while the first is stuck.
    const server = await startServer({ EMBEDDING_CACHE_SIZE: '0', RUNNER_CALL_TIMEOUT_S: '2', MAX_CONCURRENT: '1' });
    const [pid] = runnerPids(server);
    try {
      const long = Array.from({ length: 256 }, (_, i) => `${i} ${PASSAGE.repeat(6)}`);
      const first = embed(server, long);
      await new Promise((r) => setTimeout(r, 100));
      process.kill(pid!, 'SIGSTOP');
      const second = embed(server, ['queued behind the stuck call']);
      const [a, b] = await Promise.all([first, second]);
      // Both are told to retry; only the first call reached the runner and timed out, the queued
      // request failed on the probe's silence instead of waiting out a deadline of its own.
      expect([a.status, b.status]).toEqual([503, 503]);
      expect(b.body.error.code).toBe('model_unavailable');
      expect(logLines(server, 'runner_call_timed_out')).toHaveLength(1);
      const unhealthy = await fetch(`${server.url}/health`);
      expect(unhealthy.status).toBe(503);
      expect(((await unhealthy.json()) as any).models[MODEL].runners[0].state).toBe('unresponsive');

      // Woken before the probes give up on it, the same process serves again: no restart. It first
      // finishes the pass it was stopped in and drops the rest of that expired call, so on a loaded
      // machine a request may still get the retryable 503 meanwhile, as a client would retry it.
      process.kill(pid!, 'SIGCONT');
      while ((await fetch(`${server.url}/health`)).status !== 200) await new Promise((r) => setTimeout(r, 250));
      const after: number[] = [];
      while (after.length < 10 && after.at(-1) !== 200) after.push((await embed(server, ['after the pause'])).status);
      expect(after.at(-1)).toBe(200);
      expect(after.every((s) => s === 200 || s === 503)).toBe(true);
      expect(runnerPids(server)).toEqual([pid]);
      expect(logLines(server, 'runner_unresponsive_killing')).toHaveLength(0);
    } finally {
      if (alive(pid!)) process.kill(pid!, 'SIGCONT');
      await server.stop();
    }
  });
});

describe('a gateway killed with SIGKILL', () => {
  it('takes its runner down with it', async () => {
    const server = await startServer();
    const [pid] = runnerPids(server);
    expect(alive(pid!)).toBe(true);
    server.proc.kill('SIGKILL');
    await server.stop();
    // The runner notices its stdin closing and exits.
    const deadline = Date.now() + 10_000;
    while (alive(pid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid!)).toBe(false);
  });
});

describe('SIGTERM while a request is in flight', () => {
  it('finishes the request, then stops the runner and exits 0', async () => {
    const server = await startServer({ EMBEDDING_CACHE_SIZE: '0' });
    const [pid] = runnerPids(server);
    const inflight = embed(server, Array.from({ length: 64 }, (_, i) => `${i} ${PASSAGE.repeat(6)}`));
    await new Promise((r) => setTimeout(r, 150));
    server.proc.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(64);
    expect(await server.stop()).toBe(0);
    expect(alive(pid!)).toBe(false);
    expect(logLines(server, 'shutdown_complete')).toHaveLength(1);
  });
});

describe('restart policy', () => {
  it('resets the backoff once a restarted runner has served, and holds down a runner that keeps failing without serving', async () => {
    const server = await startServer({ EMBEDDING_CACHE_SIZE: '0', WARMUP_STEPS: '0', RUNNER_RESTART_LIMIT: '2', RUNNER_HOLD_DOWN_S: '600' });
    const killAndWait = async (state: 'ready' | 'held_down') => {
      const pids = runnerPids(server);
      process.kill(pids.at(-1)!, 'SIGKILL');
      const deadline = Date.now() + 60_000;
      for (;;) {
        const health = (await (await fetch(`${server.url}/health`)).json()) as any;
        const runner = health.models[MODEL].runners[0];
        if (runner.state === state && (state !== 'ready' || runnerPids(server).length > pids.length)) return runner;
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Crash, serve, crash: the call in between resets the count, so the limit of 2 is not reached.
    await killAndWait('ready');
    expect((await embed(server, ['served after the first crash'])).status).toBe(200);
    await killAndWait('ready');
    // Crash again without serving: two failures in a row, so the runner is held down with its reason.
    const held = await killAndWait('held_down');
    expect(held.reason).toMatch(/^held down for 600s after 2 failures in a row without serving; last: exited with signal SIGKILL/);
    const res = await embed(server, ['refused while held down']);
    expect(res.status).toBe(503);
    expect(res.body.error.message).toContain('held down');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`runner_held_down{model="${MODEL}",device="auto",runner="0"} 1`);
    expect(await server.stop()).toBe(0);
  });
});
