import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type Result, type ResultPromise } from 'execa';
import type { Logger } from 'pino';
import type { CatalogEntry } from '../config/catalog.ts';
import type { Settings } from '../config/settings.ts';
import { gpuPinning } from './device-policy.ts';
import { RunnerClient, type RunnerInfo } from './runner-client.ts';

const PROJECT_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** Restart delay after the second failure in a row; doubles per further failure up to RESTART_MAX_MS. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
/** Health probe period once ready, and how many failed probes in a row mean "hung". */
const PROBE_INTERVAL_MS = 5_000;
const PROBE_FAILURES_TO_KILL = 3;
/** How long the probe sent after a timed-out call waits for the runner's health answer. */
const TIMEOUT_PROBE_MS = 1_000;
/** How much of a runner's stderr to keep for the startup failure message. */
const STDERR_TAIL_LINES = 40;
const PINO_LEVELS: Record<number, 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'debug', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal',
};

/**
 * Lifecycle of one supervised runner. `probing`: a call to it passed its deadline, and it gets no
 * new call until it answers a health probe (work already queued waits for the answer).
 * `unresponsive`: that probe got no answer; queued work fails over to 503 and the runner is
 * killed after PROBE_FAILURES_TO_KILL misses in a row, unless it answers first. `held_down`: it
 * failed RUNNER_RESTART_LIMIT times in a row without serving a call in between, and is left
 * down for RUNNER_HOLD_DOWN_S.
 */
export type RunnerState = 'starting' | 'ready' | 'probing' | 'unresponsive' | 'down' | 'held_down' | 'stopped';

/** States in which the process is up and watched by the health probe. */
const WATCHED: ReadonlySet<RunnerState> = new Set(['ready', 'probing', 'unresponsive']);

/** The runner settings the supervisor passes on; a subset of the gateway's settings. */
export type RunnerSettings = Pick<Settings,
  'MODELS_DIR' | 'MAX_CONCURRENT' | 'RUNNER_THREADS' | 'MAX_BATCH_TOKENS' | 'ENABLE_WARMUP' |
  'WARMUP_BATCH_SIZE' | 'WARMUP_STEPS' | 'RUNNER_PYTHON' | 'RUNNER_STARTUP_TIMEOUT_S' | 'RUNNER_CALL_TIMEOUT_S' |
  'RUNNER_RESTART_LIMIT' | 'RUNNER_HOLD_DOWN_S' | 'LOG_LEVEL' | 'PRECISION' | 'FIDELITY_MIN_MEAN_COSINE' |
  'FIDELITY_MIN_WORST_COSINE' | 'FIDELITY_MIN_TOP10_OVERLAP'>;

/** Raised when a runner cannot get to SERVING; the message carries its stderr. */
export class RunnerStartError extends Error {}

/**
 * Owns one runner process for one (model, device): starts it, waits until its health service
 * says SERVING, watches it, and restarts it with exponential backoff when it dies or hangs.
 * The backoff resets once a restarted runner has served a call, so a runner that crashes now
 * and then always comes back in seconds; one that keeps failing without serving is held down
 * with its reason, which /health and the metrics show, while other models keep serving.
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
  /** Crashes and failed starts since the runner last served a call. */
  #failures = 0;
  #reason: string | undefined;
  #probe: NodeJS.Timeout | undefined;
  /** Health probes in a row that got no answer. */
  #misses = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  readonly #settings: RunnerSettings;
  readonly #log: Logger;
  readonly #socket: string;
  readonly #path: string | undefined;
  readonly #entry: CatalogEntry;

  /**
   * socket: the runner's socket path, inside the gateway's private SocketDir. path: the folder of
   * a model served without a catalog entry (MODELS=name=folder).
   */
  /**
   * entry: the model's catalog entry as the gateway validated it, which the runner takes as it is
   * rather than reading the catalog again; path: the folder of a model served from one of its own.
   */
  constructor(entry: CatalogEntry, device: string, socket: string, settings: RunnerSettings, logger: Logger, path?: string) {
    super();
    this.#path = path;
    this.#entry = entry;
    const model = entry.name;
    this.model = model;
    this.device = device;
    this.#settings = settings;
    this.#log = logger.child({ runner: model, device });
    this.#socket = socket;
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

  /** Why the runner is not ready, when it has failed: its last exit or the hold-down. */
  get reason(): string | undefined {
    return this.#state === 'ready' ? undefined : this.#reason;
  }

  /** Called after each successful call: the runner works, so the next crash restarts it at once. */
  served(): void {
    this.#failures = 0;
  }

  /** OS process id of the current runner, if one is running. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /**
   * Starts the runner, at boot or again after stop(): resolves once SERVING, rejects with the
   * runner's stderr if it cannot start.
   */
  async start(): Promise<void> {
    if (this.#state === 'stopped') {
      // A runner stopped for being idle starts afresh, with no failures held against it.
      this.#state = 'down';
      this.#failures = 0;
      this.#reason = undefined;
    }
    await this.#launch();
  }

  /** Stops the runner until start() is called again: SIGTERM, then SIGKILL if it lingers. */
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
    let pinned: ReturnType<typeof gpuPinning>;
    try {
      pinned = gpuPinning(this.device);
    } catch (err) {
      this.#reason = (err as Error).message;
      throw new RunnerStartError(`runner for '${this.model}' on ${this.device}: ${this.#reason}`);
    }
    const { device, env } = pinned;
    // The socket path is free: the folder is new, and every exit path removed its last socket.
    this.#setState('starting');
    // A new secret per process: only this gateway, which holds it, can call the runner.
    const secret = randomBytes(32).toString('hex');
    const stderrTail: string[] = [];
    const proc = execa(s.RUNNER_PYTHON, [
      '-m', 'runner',
      '--model', this.model,
      // A folder of one's own names its handler by its files; a catalog model is served as validated here.
      ...(this.#path ? ['--model-path', this.#path] : ['--entry', JSON.stringify(this.#entry)]),
      '--models-dir', s.MODELS_DIR,
      '--device', device,
      '--socket', `unix://${this.#socket}`,
      '--workers', String(s.MAX_CONCURRENT),
      '--threads', String(s.RUNNER_THREADS),
      '--max-batch-tokens', String(s.MAX_BATCH_TOKENS),
      '--warmup', s.ENABLE_WARMUP ? 'on' : 'off',
      '--warmup-batch-size', String(s.WARMUP_BATCH_SIZE),
      '--warmup-steps', String(s.WARMUP_STEPS),
      '--precision', s.PRECISION,
      '--fidelity-min-mean-cosine', String(s.FIDELITY_MIN_MEAN_COSINE),
      '--fidelity-min-worst-cosine', String(s.FIDELITY_MIN_WORST_COSINE),
      '--fidelity-min-top10-overlap', String(s.FIDELITY_MIN_TOP10_OVERLAP),
      '--log-level', ['trace', 'debug'].includes(s.LOG_LEVEL) ? 'debug' : 'info',
      '--exit-with-stdin',
    ], {
      env: {
        ...env, PYTHONPATH: [PROJECT_ROOT, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1',
        EDGE_EMBED_RUNNER_SECRET: secret,
      },
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      forceKillAfterDelay: 10_000,
    });
    this.#proc = proc;
    let announced!: () => void;
    const serving = new Promise<void>((resolve) => { announced = resolve; });
    this.#pipeLogs(proc, stderrTail, announced);

    const exited = proc.then((r) => r);
    const deadline = Date.now() + s.RUNNER_STARTUP_TIMEOUT_S * 1000;
    let exitedEarly = false;
    void exited.then(() => { exitedEarly = true; });
    // The client connects only once the runner's socket exists (it is bound just before the
    // `serving` line): a channel that tried earlier would sit in a reconnect backoff, which grows
    // with every failed attempt and could outlast the start by seconds. Polling every second covers
    // a runner whose log line went missing; failed checks are retried 100 ms apart.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let client: RunnerClient | undefined;
    for (;;) {
      await Promise.race([serving, exited, sleep(1_000)]);
      if (client) await Promise.race([exited, sleep(100)]);
      if (exitedEarly || Date.now() >= deadline) break;
      if (!existsSync(this.#socket)) continue;
      client ??= new RunnerClient(this.model, `unix://${this.#socket}`, secret, s.RUNNER_CALL_TIMEOUT_S * 1000,
        () => this.#callTimedOut(proc));
      if (await client.isServing(1_000)) break;
    }
    if (!client || exitedEarly || this.#stopped() || Date.now() >= deadline) {
      client?.close();
      if (!exitedEarly) proc.kill('SIGKILL');
      const result = await exited;
      const why = exitedEarly ? describeExit(result, s.RUNNER_PYTHON) : `was not ready within ${s.RUNNER_STARTUP_TIMEOUT_S}s`;
      // A runner that failed cleanly said why in one line; keep the whole message on one line then.
      const detail = stderrTail.length === 0 ? '' : stderrTail.length === 1 ? `: ${stderrTail[0]}` : `:\n${stderrTail.join('\n')}`;
      throw new RunnerStartError(`runner for '${this.model}' on ${this.device} ${why}${detail}`);
    }
    try {
      this.#info = await client.info();
    } catch (err) {
      client.close();
      proc.kill('SIGKILL');
      throw new RunnerStartError(`runner for '${this.model}' on ${this.device} did not describe its model: ${(err as Error).message}`);
    }
    this.#client = client;
    this.#setState('ready');
    this.#log.info({ pid: proc.pid, socket: this.#socket, info: this.#info }, 'runner_ready');
    void exited.then((r) => this.#onExit(proc, r.exitCode, r.signal));
    this.#watchHealth(proc, client);
  }

  /** Re-emits the runner's log lines through pino; `onServing` fires on its `serving` line. */
  #pipeLogs(proc: ResultPromise, stderrTail: string[], onServing: () => void): void {
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
      // The runner reports the device it resolved (cuda:0 after pinning); this logger is already
      // bound to the configured one, and a second `device` key would hide it from JSON parsers.
      const { level, msg, time: _time, device, ...fields } = rec;
      if (device !== undefined) fields.runner_device = device;
      this.#log[PINO_LEVELS[level as number] ?? 'info'](fields, String(msg ?? ''));
      if (msg === 'serving') onServing();
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      this.#log.warn({ stream: 'stderr' }, line);
    });
  }

  #watchHealth(proc: ResultPromise, client: RunnerClient): void {
    this.#misses = 0;
    clearInterval(this.#probe);
    this.#probe = setInterval(() => void this.#probeOnce(proc, client), PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  /**
   * A call passed its deadline. The runner may be hung (SIGSTOP, a stuck kernel) or only slow;
   * until a probe says which, another call would most likely wait out its whole deadline too.
   */
  #callTimedOut(proc: ResultPromise): void {
    if (this.#proc !== proc || this.#state !== 'ready' || !this.#client) return;
    this.#log.warn({ pid: proc.pid }, 'runner_call_timed_out');
    this.#setState('probing');
    void this.#probeOnce(proc, this.#client, TIMEOUT_PROBE_MS);
  }

  /** One health probe: an answer makes the runner ready again, misses in a row kill it. */
  async #probeOnce(proc: ResultPromise, client: RunnerClient, timeoutMs?: number): Promise<void> {
    if (this.#proc !== proc || !WATCHED.has(this.#state)) return;
    const serving = await client.isServing(timeoutMs);
    if (this.#proc !== proc || !WATCHED.has(this.#state)) return;
    if (serving) {
      this.#misses = 0;
      this.#setState('ready');
      return;
    }
    this.#misses += 1;
    if (this.#state === 'probing') {
      this.#reason = 'is not answering: a call passed its deadline and a health probe got no answer';
      this.#setState('unresponsive');
    }
    if (this.#misses >= PROBE_FAILURES_TO_KILL) {
      this.#log.error({ pid: proc.pid }, 'runner_unresponsive_killing');
      proc.kill('SIGKILL');
    }
  }

  #onExit(proc: ResultPromise, code: number | undefined, signal: string | undefined): void {
    if (this.#proc !== proc || this.#state === 'stopped') return;
    clearInterval(this.#probe);
    this.#client?.close();
    this.#client = undefined;
    this.#log.error({ code, signal, pid: proc.pid }, 'runner_exited');
    this.#failed(exitText(code, signal));
  }

  /** Counts a crash or failed start, then restarts after the backoff or holds the runner down. */
  #failed(reason: string): void {
    rmSync(this.#socket, { force: true });
    this.#failures += 1;
    const s = this.#settings;
    if (this.#failures >= s.RUNNER_RESTART_LIMIT) {
      this.#reason = `held down for ${s.RUNNER_HOLD_DOWN_S}s after ${this.#failures} failures in a row without serving; last: ${reason}`;
      this.#setState('held_down');
      this.#log.error({ reason: this.#reason }, 'runner_held_down');
      this.#restartAfter(s.RUNNER_HOLD_DOWN_S * 1000);
      return;
    }
    this.#reason = reason;
    this.#setState('down');
    // A runner that had been serving restarts at once; failures in a row back off.
    const delay = this.#failures === 1 ? 0 : Math.min(RESTART_BASE_MS * 2 ** (this.#failures - 2), RESTART_MAX_MS);
    this.#log.warn({ delay_ms: delay, attempt: this.#failures }, 'runner_restart_scheduled');
    this.#restartAfter(delay);
  }

  #restartAfter(delayMs: number): void {
    this.#restartTimer = setTimeout(async () => {
      if (this.#stopped()) return;
      this.#restarts += 1;
      try {
        await this.#launch();
      } catch (err) {
        if (this.#stopped()) return;
        this.#log.error({ err: (err as Error).message }, 'runner_restart_failed');
        this.#failed(firstLine((err as Error).message));
      }
    }, delayMs);
  }
}

/** Why a runner process ended before it was ready; a failed spawn names the interpreter and the OS error. */
function describeExit(result: Result, python: string): string {
  const errno = (result as { code?: string }).code;
  if (result.exitCode === undefined && result.signal === undefined && errno) {
    const hint = errno === 'ENOENT' ? ' (no such file; set RUNNER_PYTHON to a Python with the runner installed)' : '';
    return `could not be started: RUNNER_PYTHON '${python}' failed with ${errno}${hint}`;
  }
  return exitText(result.exitCode, result.signal);
}

const exitText = (code: number | undefined, signal: string | undefined) => `exited with ${signal ? `signal ${signal}` : `code ${code}`}`;

const firstLine = (text: string) => text.split('\n')[0]!;
