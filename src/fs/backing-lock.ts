// A backing dir is served by at most one daemon: writes through a second mount of it would never
// reach the first one's journal and epochs. The daemon serving it holds a lock that a crash cannot
// leave behind: a listening unix socket in Linux's abstract namespace, named after the backing
// dir's device and inode. The kernel frees the name the moment the process dies (kill -9 too), and
// anyone may connect to it to learn who holds it (one JSON line: mount point, group, pid).
import { createConnection, createServer, type Server } from 'node:net';
import { statSync } from 'node:fs';
import { EpochfsError } from '../util/errors.js';

export interface BackingHolder {
  backing: string;
  mountpoint: string;
  group: string;
  name: string;
  pid: number;
}

const ASK_TIMEOUT_MS = 2_000;
const TAKE_TRIES = 20; // a holder that is dying still has its socket for a few ms
const TAKE_RETRY_MS = 100;

/** The lock's name: one per directory, whatever path names it. */
export function lockName(backing: string): string {
  const st = statSync(backing, { bigint: true });
  return `\0epochfs/backing/${st.dev}:${st.ino}`;
}

/** Who serves `backing` now, if anyone alive does. */
export function backingHolder(backing: string): Promise<BackingHolder | undefined> {
  const name = lockName(backing);
  return new Promise((resolve) => {
    const conn = createConnection(name);
    let buf = '';
    const done = (h: BackingHolder | undefined) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(h);
    };
    const timer = setTimeout(() => done(undefined), ASK_TIMEOUT_MS);
    conn.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) done(JSON.parse(buf.slice(0, buf.indexOf('\n'))) as BackingHolder);
    });
    conn.on('error', () => done(undefined)); // ECONNREFUSED: nobody holds it
    conn.on('close', () => done(undefined));
  });
}

export function busyError(h: BackingHolder): EpochfsError {
  return new EpochfsError('EBACKINGBUSY', `${h.backing}: the backing dir is already served at ${h.mountpoint} (group ${h.group}, pid ${h.pid}); a backing dir can be mounted only once`);
}

function listen(name: string, info: BackingHolder): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer((conn) => {
      conn.on('error', () => {});
      conn.end(`${JSON.stringify(info)}\n`);
    });
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen(name, () => {
      server.unref();
      resolve(server);
    });
  });
}

/** Held by the daemon while it serves a backing dir; released at unmount or by its death. */
export class BackingLock {
  private constructor(private readonly server: Server) {}

  static async take(info: BackingHolder): Promise<BackingLock> {
    const name = lockName(info.backing);
    for (let i = 0; i < TAKE_TRIES; i++) {
      const server = await listen(name, info);
      if (server) return new BackingLock(server);
      const holder = await backingHolder(info.backing);
      if (holder) throw busyError(holder);
      await new Promise((r) => setTimeout(r, TAKE_RETRY_MS)); // held by a process that is dying
    }
    throw new EpochfsError('EBACKINGBUSY', `${info.backing}: the backing dir is locked by a process that does not answer`);
  }

  release(): void {
    this.server.close();
  }
}
