import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp } from './test-app.ts';

const app = testApp({ HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000', MAX_CONNECTIONS: '4' });
let port = 0;
beforeAll(async () => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => app.close());

/** Opens a connection, sends `head`, then `drip` every `everyMs`; resolves with ms until the server closes it. */
function slowClient(head: string, drip: string, everyMs: number): Promise<{ ms: number; reply: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let reply = '';
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(head));
    const timer = setInterval(() => socket.writable && socket.write(drip), everyMs);
    const cap = setTimeout(() => socket.destroy(), 15_000);
    socket.on('data', (d) => { reply += String(d); });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(cap);
      resolve({ ms: performance.now() - started, reply });
    });
  });
}

describe('connection hygiene', () => {
  it('closes a client that drips its headers once HTTP_HEADERS_TIMEOUT_MS has passed, with 408', async () => {
    const { ms, reply } = await slowClient('POST /v1/embeddings HTTP/1.1\r\n', 'X-Slow: 1\r\n', 200);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(1000 + 1500);
    expect(reply).toMatch(/^HTTP\/1.1 408/);
  });

  it('closes a connection that sends nothing at all once HTTP_HEADERS_TIMEOUT_MS has passed', async () => {
    const { ms } = await slowClient('', '', 60_000);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(1000 + 1500);
  });

  it('closes a client that drips a chunked body once HTTP_REQUEST_TIMEOUT_MS has passed', async () => {
    const head = 'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const { ms } = await slowClient(head, '1\r\n{\r\n', 200);
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(2000 + 1500);
  });

  it('accepts at most MAX_CONNECTIONS connections; more are closed at once', async () => {
    const open = await Promise.all(Array.from({ length: 4 }, () => new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
    })));
    await new Promise((r) => setTimeout(r, 100));
    const extra = await slowClient('', '', 1_000);
    expect(extra.ms).toBeLessThan(500);
    for (const s of open) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(503); // served again (the runners are not started here)
  });
});
