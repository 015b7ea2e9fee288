import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Names this gateway's private folder, and lets a later gateway recognise it once stale. */
const PREFIX = 'edge-embed-';
const OWNED = /^edge-embed-(\d+)-/;

/**
 * The private folder that holds this gateway's runner sockets. mkdtemp makes it 0700 with an
 * unpredictable name, so no other local user can reach a socket inside, nor plant a file at a
 * path the gateway will use. It is removed when the gateway exits; one left by a gateway that
 * was killed outright is removed by the next gateway that starts in the same parent folder.
 */
export class SocketDir {
  readonly path: string;

  constructor(parent: string) {
    sweepStale(parent);
    this.path = mkdtempSync(join(parent, `${PREFIX}${process.pid}-`));
  }

  /** The socket of runner number `index`; short, since unix socket paths are limited to ~100 bytes. */
  socket(index: number): string {
    return join(this.path, `r${index}.sock`);
  }

  /** Removes the folder and every socket in it; synchronous, so it can run in an 'exit' handler. */
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Removes folders (and sockets of older versions) that dead gateways of this user left behind. */
function sweepStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return; // mkdtemp will report an unusable parent with a clearer error
  }
  for (const name of names) {
    const pid = Number(OWNED.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    const path = join(parent, name);
    try {
      const stat = lstatSync(path);
      if (stat.uid === process.getuid?.() && !stat.isSymbolicLink()) rmSync(path, { recursive: true, force: true });
    } catch { /* gone already, or not ours to remove */ }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
