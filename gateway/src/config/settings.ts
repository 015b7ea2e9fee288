import { existsSync, readFileSync } from 'node:fs';
import { parseArgs, parseEnv } from 'node:util';
import { z } from 'zod';
import { keepAlive } from './keep-alive.ts';

const bool = z
  .union([z.boolean(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: `expected a boolean (1/0, true/false, yes/no, on/off), got "${v}"` });
    return z.NEVER;
  });
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const DEVICE = /^(auto|cpu|mps|cuda(:\d+)?)$/;
const ALIAS = /^[^=\s]+\s*=\s*[^=\s]+$/;
const MODEL_SPEC = /^[a-z0-9][a-z0-9._-]*(=.+)?$/;

/** One entry of MODELS: a catalog name, or `name=folder` for a model served straight from a folder. */
export function modelSpec(entry: string): { name: string; path?: string } {
  const at = entry.indexOf('=');
  return at < 0 ? { name: entry } : { name: entry.slice(0, at), path: entry.slice(at + 1) };
}

/**
 * Every setting of the gateway, keyed by its environment variable name. Each can also be given
 * as a flag: the name in kebab case (`MAX_QUEUE_SIZE` → `--max-queue-size`). Precedence is
 * flags, then the environment, then a `.env` file in the working directory, then the default.
 * This schema is the only description of the settings; the table in docs/settings.md mirrors it.
 */
export const settingsSchema = z.object({
  /**
   * Comma-separated models to serve: catalog names, or `name=path/to/folder` for a local
   * sentence-transformers, cross-encoder, bge-m3-style or classifier folder, which needs no catalog
   * entry. Required: the server serves nothing by default.
   */
  MODELS: list.pipe(z.array(z.string().regex(MODEL_SPEC, "a catalog name, or name=folder (name: lowercase letters, digits, '.', '_' or '-')"))
    .min(1, 'name at least one model')),
  /**
   * The model that answers requests naming none, for every kind of request it can serve (embed,
   * rerank, classify). Empty:
   * a request without a model goes to the one served model of the kind it needs, and is refused
   * when several could answer.
   */
  DEFAULT_MODEL: z.string().default(''),
  /**
   * Comma-separated `alias=model` pairs: names clients hard-code (text-embedding-3-small) that are
   * answered by a served model. /v1/models lists them.
   */
  MODEL_ALIASES: list.pipe(z.array(z.string().regex(ALIAS, 'write each alias as alias=model'))).default([])
    .transform((pairs) => pairs.map((p) => p.split('=').map((s) => s.trim()) as [alias: string, model: string])),
  /**
   * Models whose runners start at boot, comma-separated; `*` (the default) is all of MODELS and
   * empty is none. Every other model of MODELS starts on its first request.
   */
  PRELOAD: list.default(['*']),
  /**
   * How long a model's runners stay up after its last request ends: seconds, or 30s, 5m, 1h. -1
   * keeps them up; 0 stops them as soon as no request is using them. A catalog entry's
   * `keep_alive` wins for that model.
   */
  KEEP_ALIVE: keepAlive.default(-1),
  /**
   * Most models loaded at once; 0 means no limit. A load on demand past it first stops the least
   * recently used idle models. Models PRELOAD starts at boot are loaded regardless of it.
   */
  MAX_LOADED_MODELS: int(0).default(0),
  /**
   * Memory for all runners together, in MB of resident memory; 0 means no budget. A load that
   * would pass it first stops least recently used idle models.
   */
  MEMORY_BUDGET_MB: int(0).default(0),
  /** Longest a request waits for its model to load before it gets a 503 with Retry-After. */
  LOAD_TIMEOUT_S: int(1).default(120),
  /** Device(s) for the runners: auto, cpu, mps, cuda or cuda:N. A comma list starts one runner per device for each model. */
  MODEL_DEVICE: list.pipe(
    z.array(z.string().regex(DEVICE, 'use auto, cpu, mps, cuda or cuda:N')).min(1),
  ).default(['auto']),
  /** The model catalog, shared with the runners. */
  MODEL_CONFIG: z.string().default('configs/model_config.yaml'),
  /** Folder holding one weights folder per model; the runners read nothing else. */
  MODELS_DIR: z.string().default('models'),
  /** Interface to listen on. 0.0.0.0 exposes the server to the network (the Docker image does). */
  HOST: z.string().default('127.0.0.1'),
  /** HTTP port. */
  PORT: int(0, 65535).default(8000),
  /**
   * Precision for every model: fp32 (PyTorch, the reference), fp16 or bf16 (the encoder, or a
   * reranker's or classifier's whole model, in PyTorch half precision: fp16 on a GPU, bf16 on a CPU
   * or a GPU) or int8 (int8 weights on OpenVINO, CPU only), each served only if it passes the
   * fidelity gate, or auto (whichever of those the device offers is fastest, timed at first start
   * and remembered per device). Empty: each catalog entry's own `precision`.
   */
  PRECISION: z.enum(['', 'fp32', 'fp16', 'bf16', 'int8', 'auto']).default(''),
  /**
   * Fidelity gate: the least mean cosine to fp32 a non-reference precision must reach on the built-in
   * corpus (for a reranker or classifier, the least mean correlation of its scores' rankings).
   */
  FIDELITY_MIN_MEAN_COSINE: z.coerce.number().min(0).max(1).default(0.999),
  /** Fidelity gate: the least cosine to fp32 of any one text of the corpus (correlation of any one ranking). */
  FIDELITY_MIN_WORST_COSINE: z.coerce.number().min(0).max(1).default(0.995),
  /** Fidelity gate: the least share of each query's top 10 documents (each ranking's top 10) that fp32 also ranks in its top 10. */
  FIDELITY_MIN_TOP10_OVERLAP: z.coerce.number().min(0).max(1).default(0.95),
  /**
   * Compute threads per runner (PyTorch and OpenVINO). 0: one per core while a runner computes
   * alone, split between the CPU runners computing at once (core/cpu-share.ts), since a thread
   * per core each oversubscribes the cores. A number fixes it for every runner.
   */
  RUNNER_THREADS: int(0, 1024).default(0),
  /**
   * Runner calls in flight per runner; also the runner's worker threads. 0 (the default): what the
   * runner's device profile chose, 1 where passes run on the CPU (the gateway then fills each call
   * with everything queued meanwhile, which bench_embeddings measured faster than 2 for many
   * one-text clients) and 2 on an accelerator (the CPU tokenises one call during another's pass).
   */
  MAX_CONCURRENT: int(0, 64).default(0),
  /** Requests that may wait per model for a free runner before new ones get 429. */
  MAX_QUEUE_SIZE: int(0).default(128),
  /** A request whose first inputs have not reached a runner after this long fails with 429 instead of hanging. */
  QUEUE_TIMEOUT_MS: int(1).default(30_000),
  /** Once a request has started, it must finish within QUEUE_TIMEOUT_MS plus this much per input, or it gets 503. */
  REQUEST_TIMEOUT_PER_INPUT_MS: int(1).default(250),
  /** Most inputs in one request. OpenAI's own limit; requests are split into forward batches anyway. */
  MAX_BATCH_SIZE: int(1).default(2048),
  /** Most characters in one input. */
  MAX_TEXT_CHARS: int(1).default(20_000),
  /** Padded tokens the runner puts into one forward pass; bounds activation memory. */
  MAX_BATCH_TOKENS: int(1).default(16_384),
  /** Cut inputs longer than the model's token limit (true) or refuse them with 400 (false); requests may override. */
  AUTO_TRUNCATE: bool.default(true),
  /**
   * How token-id inputs (int arrays) are read on the OpenAI-shaped routes: OpenAI's cl100k_base or
   * o200k_base ids (decoded to text), or the model's own vocabulary. The llama.cpp and TEI routes
   * read the model's own ids, as those servers do.
   */
  TOKEN_ID_INPUTS: z.enum(['cl100k_base', 'o200k_base', 'model']).default('cl100k_base'),
  /** Largest request body in bytes, after decompression; larger bodies get 413. */
  MAX_REQUEST_BYTES: int(1024).default(16 * 1024 * 1024),
  /** A connection that has not sent its request headers within this long is closed (slow-loris defence). */
  HTTP_HEADERS_TIMEOUT_MS: int(1000).default(10_000),
  /** A connection that has not sent its whole request, headers and body, within this long is closed with 408. */
  HTTP_REQUEST_TIMEOUT_MS: int(1000).default(25_000),
  /**
   * An idle keep-alive connection is closed after this long. Longer than clients' own pool expiry
   * (httpx 5 s, undici 4 s, load balancers 60 s), so a client never reuses a connection at the
   * moment the server closes it.
   */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(1000).default(72_000),
  /** Most open client connections; further ones are closed as soon as they are accepted. */
  MAX_CONNECTIONS: int(1).default(1024),
  /** Log lines for rejected requests (4xx, 429, 503) per minute; the rest are counted and summed up every 10 s. */
  REJECTED_LOG_LINES_PER_MINUTE: int(0).default(120),
  /** Serve Prometheus metrics at /metrics. */
  ENABLE_METRICS: bool.default(true),
  /** Run warmup batches through every runner worker before reporting ready. */
  ENABLE_WARMUP: bool.default(true),
  /** Texts per warmup batch. */
  WARMUP_BATCH_SIZE: int(1, 1024).default(8),
  /** Warmup batches per worker. */
  WARMUP_STEPS: int(0, 100).default(2),
  /** Coalesce concurrent requests into shared runner calls. */
  ENABLE_BATCHING: bool.default(true),
  /** How long a free runner waits for more inputs while others are busy; 0 never waits. */
  BATCH_WINDOW_MS: int(0, 1000).default(2),
  /**
   * Most inputs in one runner call; larger requests are split across calls. High enough that
   * short texts fill a call by tokens, so the runner gets enough work to sort and bucket.
   */
  BATCH_WINDOW_MAX_SIZE: int(1, 4096).default(256),
  /**
   * Most estimated tokens in one runner call (UTF-8 bytes / 4 per text); one longer text goes
   * alone. Bounds how long one call holds a runner, so how long a new request may wait behind it.
   * 0 (the default): what the runner's device profile chose, 32 passes' fixed cost in tokens
   * between 4096 (a small CPU) and 65536 (a GPU).
   */
  BATCH_WINDOW_MAX_TOKENS: int(0).default(0),
  /** Cached vectors per model (LRU, by exact input); 0 disables the cache. */
  EMBEDDING_CACHE_SIZE: int(0).default(256),
  /** Comma-separated API keys; when set, requests need `Authorization: Bearer <key>`. Empty: no auth. */
  API_KEY: list.default([]),
  /**
   * Comma-separated keys for the admin routes (/admin/...: load, unload, pin). Empty: they take
   * API_KEY's keys, and are open when that is empty too.
   */
  ADMIN_API_KEY: list.default([]),
  /** With API_KEY set, keep /health, /metrics, /docs and /openapi.json reachable without a key. */
  PUBLIC_OPS_ROUTES: bool.default(true),
  /** CORS: empty (off), `*` (any origin) or a comma-separated list of allowed origins. */
  CORS_ORIGINS: list.default([]),
  /** pino log level. */
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Python interpreter for the runners; defaults to the project's .venv. */
  RUNNER_PYTHON: z.string().default(existsSync('.venv/bin/python') ? '.venv/bin/python' : 'python3'),
  /** How long a runner may take to load and warm up before startup fails. */
  RUNNER_STARTUP_TIMEOUT_S: int(1).default(300),
  /** Longest a single runner call may take; past it the request gets 503 instead of hanging. */
  RUNNER_CALL_TIMEOUT_S: int(1).default(600),
  /** A runner that crashes or fails to start this many times in a row without serving a call is held down. */
  RUNNER_RESTART_LIMIT: int(1).default(5),
  /** How long a held-down runner stays down before one more start is tried. */
  RUNNER_HOLD_DOWN_S: int(1).default(300),
  /** Where the gateway makes its private (0700) folder for the runner sockets; empty means the OS temp folder. */
  SOCKET_DIR: z.string().default(''),
  /** On SIGTERM or SIGINT, how long in-flight requests may take to finish before runners stop. */
  SHUTDOWN_TIMEOUT_S: int(0).default(30),
}).superRefine((s, ctx) => {
  // Names that point at nothing served are caught at start, not on the first request.
  const served = s.MODELS.map((m) => modelSpec(m).name);
  for (const name of s.PRELOAD) {
    if (name !== '*' && !served.includes(name)) {
      ctx.addIssue({ code: 'custom', path: ['PRELOAD'], message: `'${name}' is not one of MODELS (${served.join(', ')})` });
    }
  }
  if (s.DEFAULT_MODEL && !served.includes(s.DEFAULT_MODEL)) {
    ctx.addIssue({ code: 'custom', path: ['DEFAULT_MODEL'], message: `'${s.DEFAULT_MODEL}' is not one of MODELS (${served.join(', ')})` });
  }
  for (const [alias, target] of s.MODEL_ALIASES) {
    if (!served.includes(target)) {
      ctx.addIssue({ code: 'custom', path: ['MODEL_ALIASES'], message: `alias '${alias}' points at '${target}', which is not one of MODELS (${served.join(', ')})` });
    } else if (served.includes(alias)) {
      ctx.addIssue({ code: 'custom', path: ['MODEL_ALIASES'], message: `alias '${alias}' is itself a served model` });
    }
  }
});

/** Validated settings, as the rest of the gateway sees them. */
export type Settings = z.output<typeof settingsSchema>;

/** Flags that are not the kebab-case form of their setting, kept from the original CLI. */
const FLAG_ALIASES: Record<string, keyof Settings> = { device: 'MODEL_DEVICE', config: 'MODEL_CONFIG' };

/** A settings problem a user must fix; its message is meant to be printed as is. */
export class SettingsError extends Error {}

const names = Object.keys(settingsSchema.shape) as (keyof Settings)[];
const flagOf = (name: string) => name.toLowerCase().replaceAll('_', '-');

/** Where settings come from; split out so that tests can pass each source explicitly. */
export interface SettingsSources {
  argv: string[];
  env: Record<string, string | undefined>;
  /** Contents of the .env file, if there is one. */
  dotenv?: string;
}

/** Merges the sources by precedence and validates the result; throws SettingsError. */
export function loadSettings({ argv, env, dotenv }: SettingsSources): Settings {
  const options: Record<string, { type: 'string' }> = {};
  for (const name of names) options[flagOf(name)] = { type: 'string' };
  for (const alias of Object.keys(FLAG_ALIASES)) options[alias] = { type: 'string' };

  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new SettingsError(`${(err as Error).message}. Run with --help to list the settings.`);
  }
  const fromFile = dotenv ? parseEnv(dotenv) : {};
  const merged: Record<string, unknown> = {};
  for (const name of names) {
    const value = flags[flagOf(name)] ?? env[name] ?? fromFile[name];
    if (value !== undefined) merged[name] = value;
  }
  for (const [alias, name] of Object.entries(FLAG_ALIASES)) {
    if (flags[alias] !== undefined) merged[name] = flags[alias];
  }

  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const message = issue.code === 'invalid_type' && merged[name] === undefined ? 'is required' : issue.message;
      return `  ${name} (--${flagOf(name)}): ${message}`;
    });
    throw new SettingsError(`Invalid settings:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Reads .env from the working directory, if present. */
export function readDotenv(path = '.env'): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** The settings with their flags and defaults, for --help. */
export function settingsHelp(): string {
  return names
    .map((name) => {
      const field = settingsSchema.shape[name];
      const fallback = field.safeParse(undefined);
      const shown = fallback.success ? JSON.stringify(fallback.data) : '(required)';
      return `  --${flagOf(name).padEnd(26)} ${name.padEnd(26)} default ${shown}`;
    })
    .join('\n');
}
