import { describe, expect, it } from 'vitest';
import { testApp } from './test-app.ts';

describe('/stats and /stats/stream', () => {
  it('serves the series so far, then streams each new sample as a server-sent event, and ends streams on close', async () => {
    const app = testApp();
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    app.stats.stop(); // samples are taken by hand here, each 1 s after the last
    let now = Date.now();
    try {
      await app.stats.sample(now); // the baseline
      const first = await app.stats.sample((now += 1_000));
      const body = (await (await fetch(`${url}/stats`)).json()) as any;
      expect(body).toEqual({ interval_ms: 1000, samples: [first] });

      const res = await fetch(`${url}/stats/stream`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      expect(res.headers.get('x-request-id')).toBeTruthy(); // the hooks' headers survive
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      const next = async () => { // one event, however the bytes arrive
        while (!buffer.includes('\n\n')) buffer += (await reader.read()).value;
        const end = buffer.indexOf('\n\n') + 2;
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end);
        return event;
      };
      expect(await next()).toBe('retry: 1000\n\n');
      // The 503 the embeddings route answers before any runner is up counts as a 503.
      await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm1', input: 'x' }) });
      const sample = await app.stats.sample((now += 1_000));
      const event = await next();
      expect(event.startsWith('event: sample\ndata: ')).toBe(true);
      expect(JSON.parse(event.slice('event: sample\ndata: '.length))).toEqual(sample);
      expect(sample).toMatchObject({ requests_per_s: 1, rejected_503: 1 });
      // Closing the server ends the stream rather than waiting for it.
      await app.close();
      expect((await reader.read()).done).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('takes the API key like every data route', async () => {
    const app = testApp({ API_KEY: 'sk-test' });
    try {
      expect((await app.inject({ url: '/stats' })).statusCode).toBe(401);
      expect((await app.inject({ url: '/stats', headers: { authorization: 'Bearer sk-test' } })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
