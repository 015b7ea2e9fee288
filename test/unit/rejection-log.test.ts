import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RejectionLog } from '../../gateway/src/http/rejection-log.ts';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';

describe('RejectionLog', () => {
  it('writes at most its rate of lines in a flood, counts every rejection, and sums up the rest', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
    const logger = pino({ level: 'info' }, sink);
    const metrics = createMetrics();
    const log = new RejectionLog(logger, metrics, 60);
    for (let i = 0; i < 5_000; i++) log.record(logger, i % 2 ? 429 : 401, i % 2 ? 'queue_full' : 'invalid_api_key', { route: '/v1/embeddings' });
    log.close();
    await new Promise((r) => setImmediate(r));
    const rejected = lines.filter((l) => l.msg === 'request_rejected');
    expect(rejected.length).toBe(10); // a burst of a sixth of the per-minute rate
    const summary = lines.find((l) => l.msg === 'rejections_suppressed');
    expect(summary?.suppressed).toEqual({ 401: 2495, 429: 2495 });
    expect(await metrics.registry.getSingleMetricAsString('http_rejected_requests_total')).toContain('status="429",code="queue_full"} 2500');
    expect(await metrics.registry.getSingleMetricAsString('log_lines_suppressed_total')).toContain(' 4990');
  });
});
