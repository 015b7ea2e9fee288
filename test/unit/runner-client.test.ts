import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerClientCtor } from '../../gateway/src/runners/proto.ts';
import { RunnerClient } from '../../gateway/src/runners/runner-client.ts';

// A real gRPC server on a unix socket whose Embed never answers: a runner stuck in a forward pass.
// Its Rerank answers at once and keeps the metadata it was sent.
describe('RunnerClient against a stuck runner', () => {
  const address = `unix://${join(mkdtempSync(join(tmpdir(), 'stuck-')), 'r.sock')}`;
  const server = new grpc.Server();
  let seen: grpc.MetadataValue[][] = [];

  beforeAll(async () => {
    server.addService(RunnerClientCtor.service, {
      Embed: () => { /* never calls back */ },
      Rerank: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        seen.push(['x-request-id', 'x-compute-threads'].flatMap((k) => call.metadata.get(k)));
        cb(null, { scores: [] });
      },
      Tokenize: () => {},
      Detokenize: () => {},
      Info: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad' }),
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  });
  afterAll(() => server.forceShutdown());

  it('gives up after the call timeout with a retryable 503-class error instead of hanging', async () => {
    const client = new RunnerClient('m', address, 'secret', 300);
    const started = performance.now();
    await expect(client.embed(['x'], { kind: 'DENSE' }, { requestIds: ['id'], threads: 0 })).rejects.toMatchObject({ kind: 'unavailable' });
    expect(performance.now() - started).toBeLessThan(5_000);
    client.close();
  });

  it('sends a batch\'s request ids and its thread count as metadata, and no thread count for 0', async () => {
    const client = new RunnerClient('m', address, 'secret', 5_000);
    seen = [];
    await client.rerank('q', ['d'], {}, { requestIds: ['a', 'b'], threads: 3 });
    await client.rerank('q', ['d'], {}, { requestIds: ['c'], threads: 0 });
    expect(seen).toEqual([['a,b', '3'], ['c']]);
    client.close();
  });

  it('maps the runner\'s gRPC status onto the error taxonomy', async () => {
    const client = new RunnerClient('m', address, 'secret', 5_000);
    await expect(client.info()).rejects.toMatchObject({ kind: 'validation', message: 'bad' });
    client.close();
  });
});
