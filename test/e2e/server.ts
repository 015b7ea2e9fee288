import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, where the gateway is started from. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The embedded default model every end-to-end suite serves. */
export const MODEL = 'all-minilm-l6-v2';

/** A real gateway process with real runners, started for one test file. */
export interface RunningServer {
  url: string;
  proc: ChildProcess;
  /** Everything the gateway wrote to stdout (JSON log lines) so far. */
  logs: () => string[];
  /** Sends SIGTERM and waits for the gateway to exit; resolves with its exit code. */
  stop: () => Promise<number | null>;
}

/** A port the OS says is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** How to start the server, when not `node gateway/src/main.ts` in the repository root. */
export interface StartOptions {
  /** The command, such as the README's serve.sh. */
  command?: string[];
  /** Working directory, where the gateway reads its .env. */
  cwd?: string;
}

/**
 * Starts the gateway with env on a free port; resolves once /health is 200. An env value of
 * undefined removes that variable, MODELS included (which otherwise defaults to MiniLM).
 */
export async function startServer(env: Record<string, string | undefined> = {}, timeoutMs = 150_000,
  { command = [process.execPath, join(ROOT, 'gateway/src/main.ts')], cwd = ROOT }: StartOptions = {}): Promise<RunningServer> {
  const port = await freePort();
  const lines: string[] = [];
  let stderr = '';
  // fp32 unless a test says otherwise: the suites compare with sentence-transformers' fp32 vectors, and
  // the default, auto, is tested on its own (precision.test.ts).
  const merged = { ...process.env, MODELS: MODEL, PORT: String(port), LOG_LEVEL: 'info', PRECISION: 'fp32', ...env };
  const proc = spawn(command[0]!, command.slice(1), {
    cwd,
    env: Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as Record<string, string>,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buffered = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const server: RunningServer = {
    url,
    proc,
    logs: () => [...lines],
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}:\n${stderr}\n${lines.join('\n')}`);
    try {
      const res = await fetch(`${url}/health`);
      // The answer can overtake the log lines before it, which travel on another pipe: wait for
      // the gateway's `ready` line, written after every preloaded runner's `runner_ready`.
      if (res.status === 200 && logLines(server, 'ready').length > 0) return server;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  await server.stop();
  throw new Error(`gateway not healthy within ${timeoutMs} ms:\n${stderr}`);
}

/** Parsed JSON log lines with the given msg. */
export function logLines(server: RunningServer, msg: string): Record<string, unknown>[] {
  return server.logs()
    .map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } })
    .filter((r): r is Record<string, unknown> => r?.msg === msg);
}

/** Cosine similarity of two vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** sentence-transformers' own vectors for the texts, on the weights the runner loads. */
export function reference(texts: string[]): number[][] {
  const out = execFileSync(join(ROOT, '.venv/bin/python'), ['test/e2e/reference_embed.py', join(ROOT, 'models', MODEL)], {
    cwd: ROOT, input: JSON.stringify(texts), env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_DISABLE_PROGRESS_BARS: '1' },
  });
  return JSON.parse(out.toString()) as number[][];
}
