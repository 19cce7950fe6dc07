// fsync-writer.mjs run as its own process, with its pid, for tests that kill what runs under it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface FsyncWriter {
  pid: number;
  /** resolves at its first fsynced file (or when it exits before) */
  started: Promise<void>;
  /** resolves, once the writer has exited, with the lines it printed: "<name> <sha256>" of each fsynced file */
  done: Promise<string[]>;
  /** SIGKILL, by pid, if it still runs */
  kill(): void;
}

/** `ring`: also rewrite the blocks of one file in place, fdatasyncing each (see fsync-writer.mjs). */
export function startFsyncWriter(root: string, tag: string, opts: { ring?: boolean } = {}): FsyncWriter {
  const args = [join(__dirname, 'fsync-writer.mjs'), root, tag, ...(opts.ring ? ['300000', 'ring'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const done = new Promise<string[]>((res) => child.on('exit', () => res(out.split('\n').filter(Boolean))));
  const started = new Promise<void>((res) => {
    child.stdout.once('data', () => res());
    child.once('exit', () => res());
  });
  return {
    pid: child.pid!,
    started,
    done,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
