import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerClientCtor } from '../../gateway/src/runners/proto.ts';
import { RunnerClient } from '../../gateway/src/runners/runner-client.ts';

// A real gRPC server on a unix socket whose Embed never answers: a runner stuck in a forward pass.
describe('RunnerClient against a stuck runner', () => {
  const address = `unix://${join(mkdtempSync(join(tmpdir(), 'stuck-')), 'r.sock')}`;
  const server = new grpc.Server();

  beforeAll(async () => {
    server.addService(RunnerClientCtor.service, {
      Embed: () => { /* never calls back */ },
      Rerank: () => {},
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
    await expect(client.embed(['x'], { kind: 'DENSE' }, ['id'])).rejects.toMatchObject({ kind: 'unavailable' });
    expect(performance.now() - started).toBeLessThan(5_000);
    client.close();
  });

  it('maps the runner\'s gRPC status onto the error taxonomy', async () => {
    const client = new RunnerClient('m', address, 'secret', 5_000);
    await expect(client.info()).rejects.toMatchObject({ kind: 'validation', message: 'bad' });
    client.close();
  });
});
