import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from './test-app.ts';

const HEADERS_MS = 1000;
const REQUEST_MS = 2000;
const app = testApp({ HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS), HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS), MAX_CONNECTIONS: '4' });
let port = 0;
beforeAll(async () => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => app.close());

/**
 * Opens a connection, sends `head`, then `drip` every `everyMs`, and gives up after `capMs`;
 * resolves with ms until the connection closed and whether the server closed it first.
 */
function slowClient(head: string, drip: string, everyMs: number, capMs: number): Promise<{ ms: number; reply: string; byServer: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let reply = '';
    let byServer = true;
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(head));
    const timer = setInterval(() => socket.writable && socket.write(drip), everyMs);
    const cap = setTimeout(() => { byServer = false; socket.destroy(); }, capMs);
    socket.on('data', (d) => { reply += String(d); });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(cap);
      resolve({ ms: performance.now() - started, reply, byServer });
    });
  });
}

describe('connection hygiene', () => {
  it('closes a client that drips its headers once HTTP_HEADERS_TIMEOUT_MS has passed, with 408', async () => {
    // Not before the timeout, and by the server, with its 408, rather than by this client giving up.
    const { ms, reply, byServer } = await slowClient('POST /v1/embeddings HTTP/1.1\r\n', 'X-Slow: 1\r\n', 200, 3 * HEADERS_MS);
    expect(ms).toBeGreaterThanOrEqual(HEADERS_MS - 100);
    expect(byServer).toBe(true);
    expect(reply).toMatch(/^HTTP\/1.1 408/);
  });

  it('closes a connection that sends nothing at all once HTTP_HEADERS_TIMEOUT_MS has passed', async () => {
    const { ms, byServer } = await slowClient('', '', 60_000, 3 * HEADERS_MS);
    expect(ms).toBeGreaterThanOrEqual(HEADERS_MS - 100);
    expect(byServer).toBe(true);
  });

  it('closes a client that drips a chunked body once HTTP_REQUEST_TIMEOUT_MS has passed', async () => {
    const head = 'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const { ms, byServer } = await slowClient(head, '1\r\n{\r\n', 200, 3 * REQUEST_MS);
    expect(ms).toBeGreaterThanOrEqual(REQUEST_MS - 100);
    expect(byServer).toBe(true);
  });

  it('accepts at most MAX_CONNECTIONS connections; more are closed at once', async () => {
    const open = await Promise.all(Array.from({ length: 4 }, () => new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
    })));
    await new Promise((r) => setTimeout(r, 100));
    // Closed by the limit: before the headers timeout, the only other reason to close it, could.
    const extra = await slowClient('', '', 1_000, HEADERS_MS - 100);
    expect(extra.byServer).toBe(true);
    for (const s of open) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(503); // served again (the runners are not started here)
  });
});
