import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { RunnerClient, type RunnerInfo } from './runner-client.ts';

const PROJECT_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** First restart delay; doubles per consecutive failure up to RESTART_MAX_MS. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A runner that stayed up this long has its backoff reset. */
const STABLE_AFTER_MS = 60_000;
/** Health probe period once ready, and how many failed probes in a row mean "hung". */
const PROBE_INTERVAL_MS = 5_000;
const PROBE_FAILURES_TO_KILL = 3;
/** How much of a runner's stderr to keep for the startup failure message. */
const STDERR_TAIL_LINES = 40;
const PINO_LEVELS: Record<number, 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'debug', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal',
};

/** Lifecycle of one supervised runner. */
export type RunnerState = 'starting' | 'ready' | 'down' | 'stopped';

/** The runner settings the supervisor passes on; a subset of the gateway's settings. */
export type RunnerSettings = Pick<Settings,
  'MODEL_CONFIG' | 'MODELS_DIR' | 'MAX_CONCURRENT' | 'MAX_BATCH_TOKENS' | 'ENABLE_WARMUP' |
  'WARMUP_BATCH_SIZE' | 'WARMUP_STEPS' | 'RUNNER_PYTHON' | 'RUNNER_STARTUP_TIMEOUT_S' | 'RUNNER_CALL_TIMEOUT_S' | 'LOG_LEVEL'>;

/** Raised when a runner cannot get to SERVING; the message carries its stderr. */
export class RunnerStartError extends Error {}

/**
 * Owns one runner process for one (model, device): starts it, waits until its health service
 * says SERVING, watches it, and restarts it with exponential backoff when it dies or hangs.
 * Emits 'state' with the new RunnerState on every change.
 */
export class SupervisedRunner extends EventEmitter<{ state: [RunnerState] }> {
  readonly model: string;
  readonly device: string;
  #state: RunnerState = 'down';
  #client: RunnerClient | undefined;
  #info: RunnerInfo | undefined;
  #proc: ResultPromise | undefined;
  #restarts = 0;
  #failures = 0;
  #readySince = 0;
  #probe: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  readonly #settings: RunnerSettings;
  readonly #log: Logger;
  readonly #socket: string;

  constructor(model: string, device: string, settings: RunnerSettings, logger: Logger) {
    super();
    this.model = model;
    this.device = device;
    this.#settings = settings;
    this.#log = logger.child({ runner: model, device });
    const slug = `${model}-${device}`.replace(/[^a-z0-9.-]/gi, '_');
    this.#socket = join(tmpdir(), `edge-embed-${process.pid}-${slug}.sock`);
  }

  /** Current lifecycle state. */
  get state(): RunnerState {
    return this.#state;
  }

  /** The model facts read after the first successful start. */
  get info(): RunnerInfo | undefined {
    return this.#info;
  }

  /** The client for calls; only meaningful while state is 'ready'. */
  get client(): RunnerClient | undefined {
    return this.#state === 'ready' ? this.#client : undefined;
  }

  /** Restart attempts after a crash or hang since the gateway started. */
  get restarts(): number {
    return this.#restarts;
  }

  /** OS process id of the current runner, if one is running. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** First start: resolves once SERVING, rejects with the runner's stderr if it cannot start. */
  async start(): Promise<void> {
    await this.#launch();
  }

  /** Stops the runner for good: SIGTERM, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    this.#setState('stopped');
    clearTimeout(this.#restartTimer);
    clearInterval(this.#probe);
    const proc = this.#proc;
    this.#client?.close();
    if (proc) {
      proc.kill('SIGTERM');
      await proc;
    }
    rmSync(this.#socket, { force: true });
  }

  // A method rather than a comparison, so that the compiler does not assume the state is
  // unchanged across the awaits in between.
  #stopped(): boolean {
    return this.#state === 'stopped';
  }

  #setState(state: RunnerState): void {
    if (this.#state === state || this.#state === 'stopped') return;
    this.#state = state;
    this.emit('state', state);
  }

  async #launch(): Promise<void> {
    const s = this.#settings;
    rmSync(this.#socket, { force: true });
    this.#setState('starting');
    const { device, env } = this.#pinning();
    const stderrTail: string[] = [];
    const proc = execa(s.RUNNER_PYTHON, [
      '-m', 'runner',
      '--model', this.model,
      '--config', s.MODEL_CONFIG,
      '--models-dir', s.MODELS_DIR,
      '--device', device,
      '--socket', `unix://${this.#socket}`,
      '--workers', String(s.MAX_CONCURRENT),
      '--max-batch-tokens', String(s.MAX_BATCH_TOKENS),
      '--warmup', s.ENABLE_WARMUP ? 'on' : 'off',
      '--warmup-batch-size', String(s.WARMUP_BATCH_SIZE),
      '--warmup-steps', String(s.WARMUP_STEPS),
      '--log-level', ['trace', 'debug'].includes(s.LOG_LEVEL) ? 'debug' : 'info',
      '--exit-with-stdin',
    ], {
      env: { ...env, PYTHONPATH: [PROJECT_ROOT, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1' },
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      forceKillAfterDelay: 10_000,
    });
    this.#proc = proc;
    this.#pipeLogs(proc, stderrTail);

    const exited = proc.then((r) => r);
    const client = new RunnerClient(this.model, `unix://${this.#socket}`, s.RUNNER_CALL_TIMEOUT_S * 1000);
    const deadline = Date.now() + s.RUNNER_STARTUP_TIMEOUT_S * 1000;
    let exitedEarly = false;
    void exited.then(() => { exitedEarly = true; });
    while (!exitedEarly && Date.now() < deadline && !(await client.isServing(1_000))) {
      await new Promise((r) => setTimeout(r, 200));
    }
    if (exitedEarly || this.#stopped() || Date.now() >= deadline) {
      client.close();
      if (!exitedEarly) proc.kill('SIGKILL');
      const result = await exited;
      const why = exitedEarly ? `exited with code ${result.exitCode ?? result.signal}` : `was not ready within ${s.RUNNER_STARTUP_TIMEOUT_S}s`;
      throw new RunnerStartError(`runner for '${this.model}' on ${this.device} ${why}:\n${stderrTail.join('\n') || '(no stderr output)'}`);
    }
    this.#info = await client.info();
    this.#client = client;
    this.#readySince = Date.now();
    this.#setState('ready');
    this.#log.info({ pid: proc.pid, info: this.#info }, 'runner_ready');
    void exited.then((r) => this.#onExit(proc, r.exitCode, r.signal));
    this.#watchHealth(proc, client);
  }

  /** cuda:N runs with only GPU N visible, which the runner then sees as cuda:0. */
  #pinning(): { device: string; env: NodeJS.ProcessEnv } {
    const match = /^cuda:(\d+)$/.exec(this.device);
    if (!match) return { device: this.device, env: {} };
    return { device: 'cuda:0', env: { CUDA_VISIBLE_DEVICES: match[1] } };
  }

  #pipeLogs(proc: ResultPromise, stderrTail: string[]): void {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let rec: Record<string, unknown> | undefined;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        rec = undefined;
      }
      if (!rec || typeof rec !== 'object') {
        this.#log.info({ stream: 'stdout' }, line);
        return;
      }
      const { level, msg, time: _time, ...fields } = rec;
      this.#log[PINO_LEVELS[level as number] ?? 'info'](fields, String(msg ?? ''));
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      this.#log.warn({ stream: 'stderr' }, line);
    });
  }

  #watchHealth(proc: ResultPromise, client: RunnerClient): void {
    let misses = 0;
    clearInterval(this.#probe);
    this.#probe = setInterval(async () => {
      if (this.#proc !== proc || this.#state !== 'ready') return;
      misses = (await client.isServing()) ? 0 : misses + 1;
      if (misses >= PROBE_FAILURES_TO_KILL) {
        this.#log.error({ pid: proc.pid }, 'runner_unresponsive_killing');
        proc.kill('SIGKILL');
      }
    }, PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  #onExit(proc: ResultPromise, code: number | undefined, signal: string | undefined): void {
    if (this.#proc !== proc || this.#state === 'stopped') return;
    clearInterval(this.#probe);
    this.#client?.close();
    this.#client = undefined;
    this.#setState('down');
    if (Date.now() - this.#readySince > STABLE_AFTER_MS) this.#failures = 0;
    this.#log.error({ code, signal, pid: proc.pid }, 'runner_exited');
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    const delay = Math.min(RESTART_BASE_MS * 2 ** this.#failures, RESTART_MAX_MS);
    this.#failures += 1;
    this.#log.warn({ delay_ms: delay, attempt: this.#failures }, 'runner_restart_scheduled');
    this.#restartTimer = setTimeout(async () => {
      if (this.#state === 'stopped') return;
      this.#restarts += 1;
      try {
        await this.#launch();
      } catch (err) {
        if (this.#stopped()) return;
        this.#setState('down');
        this.#log.error({ err: (err as Error).message }, 'runner_restart_failed');
        this.#scheduleRestart();
      }
    }, delay);
  }
}
