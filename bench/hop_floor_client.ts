// The gateway's side of bench/bench_hop_floor.py: the real RunnerClient sends one-text embed
// calls to bench/hop_floor_runner.py, one at a time, and prints one JSON line of round trips.
//   node bench/hop_floor_client.ts ADDRESS CALLS PAUSE_MS idle|busy
// busy: the event loop keeps polling (setImmediate) while a call is out, so that Node never
// sleeps in epoll; the difference to idle is what waking the gateway's thread costs.
import { RunnerClient } from '../gateway/src/runners/runner-client.ts';

const [address, calls, pauseMs, mode] = process.argv.slice(2) as [string, string, string, string];
const client = new RunnerClient('floor', address, 'floor', 10_000);
const meta = { requestIds: ['floor-request'], traceIds: ['0123456789abcdef0123456789abcdef'], threads: 0 };
const text = ['A short query about the weather in Paris'];
const times: number[] = [];
for (let i = 0; i < Number(calls); i++) {
  if (Number(pauseMs) > 0) await new Promise((r) => setTimeout(r, Number(pauseMs)));
  let waiting = mode === 'busy';
  const poll = () => { if (waiting) setImmediate(poll); };
  const started = performance.now();
  poll();
  await client.embed(text, {}, meta);
  times.push(performance.now() - started);
  waiting = false;
}
client.close();
// The first tenth warms up and is left out.
const kept = times.slice(Math.ceil(times.length / 10)).sort((a, b) => a - b);
const at = (q: number) => kept[Math.floor(q * (kept.length - 1))]!;
console.log(JSON.stringify({ calls: kept.length, p10_ms: at(0.1), p50_ms: at(0.5), p90_ms: at(0.9) }));
