// Files named by their handles (`fh` of a record): opened with open_by_handle_at(2) on the backing
// dir of the record's volume, whatever the file is called now. Used by the redo after a power loss
// (src/journal/redo.ts) and to read the bytes of writes journaled by reference (src/journal/refs.ts).
import { closeSync, fstatSync, openSync, constants as C } from 'node:fs';
import { check, sys } from '../native/sys.js';

const ESTALE = -116;
const ENOENT = -2;

/** The files records name, opened by handle once each, and each volume's backing dir (the mount fd). */
export class HandleFiles {
  private readonly roots = new Map<string, number | undefined>();
  private readonly fds = new Map<string, number | undefined>();

  /** @param backingOf a volume's backing dir (undefined: unknown, its files are stale) */
  constructor(private readonly backingOf: (vol: string) => string | undefined, private readonly flags: number, private readonly limit = 64) {}

  /** An fd of the regular file `fh` names on volume `vol`, or undefined when it is gone (or its inode was reused). */
  get(vol: string, fh: string): number | undefined {
    const key = `${vol}\0${fh}`;
    if (this.fds.has(key)) return this.fds.get(key);
    if (this.fds.size >= this.limit) this.closeFiles();
    const root = this.root(vol);
    let fd: number | undefined;
    if (root !== undefined) {
      const r = sys.openByHandle(root, Buffer.from(fh, 'hex'), this.flags | C.O_NOFOLLOW);
      if (r !== ESTALE && r !== ENOENT) fd = check(r, 'open_by_handle_at', `a file of volume ${vol}`);
      if (fd !== undefined && !fstatSync(fd).isFile()) {
        closeSync(fd);
        fd = undefined;
      }
    }
    this.fds.set(key, fd);
    return fd;
  }

  private root(vol: string): number | undefined {
    if (!this.roots.has(vol)) {
      const backing = this.backingOf(vol);
      this.roots.set(vol, backing === undefined ? undefined : openDir(backing));
    }
    return this.roots.get(vol);
  }

  private closeFiles(): void {
    for (const fd of this.fds.values()) if (fd !== undefined) closeSync(fd);
    this.fds.clear();
  }

  close(): void {
    this.closeFiles();
    for (const fd of this.roots.values()) if (fd !== undefined) closeSync(fd);
    this.roots.clear();
  }
}

/** The backing dir's fd, or undefined when it is gone (its records cannot matter any more). */
function openDir(path: string): number | undefined {
  try {
    return openSync(path, C.O_RDONLY | C.O_DIRECTORY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
