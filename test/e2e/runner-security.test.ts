import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerClient } from '../../gateway/src/runners/runner-client.ts';
import { alive, logLines, type RunningServer, startServer } from './server.ts';

/** A SOCKET_DIR of this test's own, so that other gateways' folders never mix in. */
const parent = mkdtempSync(join(tmpdir(), 'socket-parent-'));
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

const ready = (server: RunningServer) => logLines(server, 'runner_ready').at(-1)! as { pid: number; socket: string };

describe('runner transport', () => {
  let server: RunningServer;
  let socket: string;
  beforeAll(async () => {
    server = await startServer({ SOCKET_DIR: parent, WARMUP_STEPS: '0' });
    // Healthy may be answered before the runner_ready log line has come through the pipe.
    for (const deadline = Date.now() + 15_000; !logLines(server, 'runner_ready').length && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 50));
    }
    socket = ready(server).socket;
  });
  afterAll(async () => {
    await server.stop();
  });

  it('keeps sockets private: a 0700 folder with an unpredictable name, 0600 socket files', () => {
    const folder = dirname(socket);
    expect(dirname(folder)).toBe(parent);
    expect(basename(folder)).toMatch(new RegExp(`^edge-embed-${server.proc.pid}-\\w{6}$`));
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
  });

  it('refuses calls without the runner\'s secret', async () => {
    const stranger = new RunnerClient('m', `unix://${socket}`, 'not-the-secret', 5_000);
    const err = await stranger.info().catch((e: Error) => e);
    expect((err as Error & { cause: ServiceError }).cause.code).toBe(status.UNAUTHENTICATED);
    await expect(stranger.embed(['sneak in'], { kind: 'DENSE' }, { requestIds: ['x'], threads: 0 })).rejects.toMatchObject({ kind: 'internal' });
    expect(await stranger.isServing()).toBe(false);
    stranger.close();
  });

  it.skipIf(!isRoot)('lets no other user connect to the socket', () => {
    // Run as nobody: the folder's 0700 mode stops it before the socket's own 0600 would.
    const probe = `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0); })` +
      `.on('error', (e) => { console.log(e.code); process.exit(0); })`;
    const res = spawnSync(process.execPath, ['-e', probe], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 10_000 });
    expect(res.error).toBeUndefined();
    expect(res.stdout.trim()).toBe('EACCES');
  });
});

describe('socket clean-up', () => {
  it('removes the folder on a clean stop, and a fresh start removes what a SIGKILLed gateway left', async () => {
    const first = await startServer({ SOCKET_DIR: parent, WARMUP_STEPS: '0' });
    const { pid, socket } = ready(first);
    first.proc.kill('SIGKILL');
    await first.stop();
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
    // The runner took its socket with it; only the empty folder of the dead gateway is left.
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(dirname(socket))).toBe(true);

    const second = await startServer({ SOCKET_DIR: parent, WARMUP_STEPS: '0' });
    expect(existsSync(dirname(socket))).toBe(false);
    const folder = dirname(ready(second).socket);
    expect(await second.stop()).toBe(0);
    expect(existsSync(folder)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });
});
