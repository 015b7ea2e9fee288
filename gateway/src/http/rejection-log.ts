import type { FastifyBaseLogger } from 'fastify';
import type { Metrics } from '../metrics/metrics.ts';

/** How often suppressed lines are summed up in one line. */
const SUMMARY_INTERVAL_MS = 10_000;

/**
 * Log lines for rejected requests (4xx, 429, 503), under a rate limit. A flood of refused or
 * unauthenticated requests costs a counter increment each, not a log line each, so no client
 * can fill the disk: at most `perMinute` lines a minute get through (with bursts of up to a
 * sixth of that), and every 10 s one `rejections_suppressed` line says how many were left out,
 * by status. The metrics count every rejection regardless.
 */
export class RejectionLog {
  readonly #logger: FastifyBaseLogger;
  readonly #metrics: Metrics;
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #refilledAt = performance.now();
  #suppressed = new Map<number, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(logger: FastifyBaseLogger, metrics: Metrics, perMinute: number) {
    this.#logger = logger;
    this.#metrics = metrics;
    this.#perMs = perMinute / 60_000;
    this.#burst = Math.max(perMinute > 0 ? 1 : 0, perMinute / 6);
    this.#tokens = this.#burst;
    this.#timer = setInterval(() => this.#flush(), SUMMARY_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Counts a rejection and logs it with the request's logger if the rate allows. */
  record(log: FastifyBaseLogger, status: number, code: string | null, fields: Record<string, unknown>): void {
    this.#metrics.rejectedRequests.inc({ status: String(status), code: code ?? '' });
    if (this.#take()) {
      log.info({ status, code, ...fields }, 'request_rejected');
      return;
    }
    this.#metrics.suppressedLogLines.inc();
    this.#suppressed.set(status, (this.#suppressed.get(status) ?? 0) + 1);
  }

  /** Writes the summary of suppressed lines, if any; also called on close so none are lost. */
  #flush(): void {
    if (this.#suppressed.size === 0) return;
    const byStatus = Object.fromEntries(this.#suppressed);
    this.#suppressed = new Map();
    this.#logger.warn({ suppressed: byStatus }, 'rejections_suppressed');
  }

  /** Stops the summary timer, after a last summary. */
  close(): void {
    clearInterval(this.#timer);
    this.#flush();
  }

  #take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#perMs);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
