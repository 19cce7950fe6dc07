// The kernel's view of mounts: is a path a mount point, of which type, is it stale; and unmounting
// through the umount(8) program (asynchronously: a synchronous child would deadlock a serving daemon).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function readMounts(): MountEntry[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const fields = left.split(' ');
    const [fstype, source] = right.split(' ');
    out.push({ mountpoint: unescapeMountinfo(fields[4]), fstype, source: unescapeMountinfo(source) });
  }
  return out;
}

export function findMount(mountpoint: string): MountEntry | undefined {
  const all = readMounts().filter((m) => m.mountpoint === mountpoint);
  return all[all.length - 1];
}

/**
 * A FUSE mount whose daemon is gone answers ENOTCONN ("Transport endpoint is not connected").
 * statfs is asked because the kernel never answers it from its caches, unlike stat.
 */
export async function isStale(mountpoint: string): Promise<boolean> {
  try {
    await statfs(mountpoint);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

export interface UmountResult {
  ok: boolean;
  busy: boolean;
  message: string;
}

export function umount(mountpoint: string, opts: { lazy?: boolean } = {}): Promise<UmountResult> {
  const args = opts.lazy ? ['-l', mountpoint] : [mountpoint];
  return new Promise((resolve) => {
    execFile('umount', args, (err, _stdout, stderr) => {
      const message = String(stderr || err?.message || '').trim();
      resolve({ ok: !err, busy: /busy/i.test(message), message });
    });
  });
}
