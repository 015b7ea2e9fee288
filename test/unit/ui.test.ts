import { Script } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { testApp } from './test-app.ts';

let app: ReturnType<typeof testApp> | undefined;
afterEach(async () => app?.close());

describe('the dashboard page', () => {
  it('is served with a strict CSP, no inline script or style, and every asset it names from this server', async () => {
    app = testApp();
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe');
    const html = page.body;
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/); // every script is a file
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(4);
    for (const url of assets) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
    }
    expect((await app.inject({ url: '/ui' })).body).toBe(html);
  });

  it('serves its TypeScript as plain JavaScript', async () => {
    app = testApp();
    const js = (await app.inject({ url: '/ui/app.js' })).body;
    expect(js).not.toMatch(/import type|declare const/);
    expect(() => new Script(js)).not.toThrow();
  });

  it('is open like the other operations routes while TEI\'s POST / keeps needing the key', async () => {
    app = testApp({ API_KEY: 'k' });
    expect((await app.inject({ url: '/' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/ui/app.js' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/', payload: { inputs: 'x' } })).statusCode).toBe(401);
    await app.close();
    app = testApp({ API_KEY: 'k', PUBLIC_OPS_ROUTES: 'false' });
    expect((await app.inject({ url: '/' })).statusCode).toBe(401);
  });
});
