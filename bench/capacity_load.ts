// Closed-loop HTTP clients for bench/bench_capacity.py, in Node: a Python process cannot send
// ten thousand requests a second. Each client sends one one-text /v1/embeddings request at a
// time on its own kept-alive connection until the time is up, then this prints one JSON line.
//   node bench/capacity_load.ts URL MODEL CLIENTS SECONDS hit|miss
// hit: every client repeats a text of a small set, which the cache then answers; miss: every
// request carries a text never sent before, so every one reaches the runner.
import { Agent, request } from 'node:http';

const [url, model, clients, seconds, mode] = process.argv.slice(2) as [string, string, string, string, string];
const agent = new Agent({ keepAlive: true, maxSockets: Number(clients) });
const until = performance.now() + Number(seconds) * 1000;
let sent = 0;
let failed = 0;

function post(text: string): Promise<number> {
  const body = JSON.stringify({ model, input: text, encoding_format: 'base64' });
  return new Promise((resolve) => {
    const req = request(`${url}/v1/embeddings`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function client(k: number): Promise<void> {
  for (let i = 0; performance.now() < until; i++) {
    const text = mode === 'hit' ? `a cached short text number ${k % 16}` : `a distinct short text from client ${k}, request ${i}`;
    if ((await post(text)) === 200) sent++;
    else failed++;
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: Number(clients) }, (_, k) => client(k)));
const elapsed = (performance.now() - started) / 1000;
console.log(JSON.stringify({ mode, requests: sent, failed, seconds: elapsed, per_second: sent / elapsed }));
agent.destroy();
