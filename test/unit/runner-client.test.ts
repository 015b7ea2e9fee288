import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Call__Output } from '../../gateway/src/generated/edgeembed/runner/v1/Call.ts';
import { RunnerClientCtor } from '../../gateway/src/runners/proto.ts';
import { RunnerClient } from '../../gateway/src/runners/runner-client.ts';

// A real gRPC server on a unix socket. On its Calls stream an embed call is never answered (a
// runner stuck in a forward pass), a rerank call is answered at once, a classify call fails as a
// whole, and a detokenize call ends the stream (as a runner that stops does).
describe('RunnerClient on the Calls stream', () => {
  const address = `unix://${join(mkdtempSync(join(tmpdir(), 'stuck-')), 'r.sock')}`;
  const server = new grpc.Server();
  let seen: Call__Output[] = [];
  let streams: grpc.MetadataValue[][] = [];

  beforeAll(async () => {
    server.addService(RunnerClientCtor.service, {
      Calls: (stream: grpc.ServerDuplexStream<Call__Output, unknown>) => {
        streams.push(stream.metadata.get('authorization'));
        stream.on('data', (call: Call__Output) => {
          seen.push(call);
          if (call.body === 'rerank') stream.write({ id: call.id, rerank: { scores: [0.5] } });
          if (call.body === 'classify') stream.write({ id: call.id, error: { code: grpc.status.INVALID_ARGUMENT, message: 'bad option' } });
          if (call.body === 'detokenize') stream.end();
        });
      },
      Info: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad' }),
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  });
  afterAll(() => server.forceShutdown());

  it('gives up after the call timeout with a retryable 503-class error instead of hanging, and tells the runner when', async () => {
    const client = new RunnerClient('m', address, 'secret', 300);
    seen = [];
    const started = Date.now();
    await expect(client.embed(['x'], { kind: 'DENSE' }, { requestIds: ['id'], threads: 0 })).rejects.toMatchObject({ kind: 'unavailable' });
    const gaveUp = Date.now();
    // The runner skips a call it has not started by then: the deadline it was told, and the
    // client's own, are the same moment.
    expect(seen[0]!.deadline_ms).toBeGreaterThanOrEqual(started + 300);
    expect(seen[0]!.deadline_ms).toBeLessThanOrEqual(gaveUp);
    client.close();
  });

  it('sends calls on one stream that carries the secret, each with its batch\'s request ids and thread count', async () => {
    const client = new RunnerClient('m', address, 'secret', 5_000);
    seen = [];
    streams = [];
    const [a, b] = await Promise.all([
      client.rerank('q', ['d'], {}, { requestIds: ['a', 'b'], threads: 3 }),
      client.rerank('q', ['d'], {}, { requestIds: ['c'], threads: 0 }),
    ]);
    expect([a.scores, b.scores]).toEqual([[0.5], [0.5]]);
    expect(seen.map((c) => [c.request_ids, c.compute_threads])).toEqual([[['a', 'b'], 3], [['c'], 0]]);
    expect(new Set(seen.map((c) => c.id)).size).toBe(2);
    expect(streams).toEqual([['Bearer secret']]);
    client.close();
  });

  it('maps a failed call\'s status onto the error taxonomy, and the stream goes on', async () => {
    const client = new RunnerClient('m', address, 'secret', 5_000);
    await expect(client.classify(['x'], {}, { requestIds: ['a'], threads: 0 })).rejects.toMatchObject({ kind: 'validation', message: 'bad option' });
    expect((await client.rerank('q', ['d'], {}, { requestIds: ['b'], threads: 0 })).scores).toEqual([0.5]);
    await expect(client.info()).rejects.toMatchObject({ kind: 'validation', message: 'bad' });
    client.close();
  });

  it('fails every call waiting on a stream that ends as unavailable, and opens a new stream for the next', async () => {
    const client = new RunnerClient('m', address, 'secret', 5_000);
    streams = [];
    const stuck = client.embed(['x'], { kind: 'DENSE' }, { requestIds: ['a'], threads: 0 });
    const ending = client.detokenize([[1]], true, { requestIds: ['b'], threads: 0 });
    await expect(stuck).rejects.toMatchObject({ kind: 'unavailable' });
    await expect(ending).rejects.toMatchObject({ kind: 'unavailable' });
    expect((await client.rerank('q', ['d'], {}, { requestIds: ['c'], threads: 0 })).scores).toEqual([0.5]);
    expect(streams).toHaveLength(2);
    client.close();
  });
});
