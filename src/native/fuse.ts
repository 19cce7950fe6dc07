// Typed access to fuse-native as patched by patches/fuse-native+2.2.6.patch (see docs/ARCHITECTURE.md,
// "The fuse-native patch"): read-only operations answered in C, nanosecond utimens, a JS-owned copy
// of write data, the caller's uid/gid/pid, big_writes/max_write and zero timeouts, an exit callback.
import { createRequire } from 'node:module';
import type { TimeSpec } from './sys.js';

export type Cb = (result: number) => void;
export type ValueCb<T> = (result: number, value?: T) => void;

/** The operations JS serves: the mutating ones, and open/release/fsync around them. */
export interface FuseOps {
  init(cb: Cb): void;
  fsync(path: string, datasync: number, fd: number, cb: Cb): void;
  fsyncdir(path: string, datasync: number, fd: number, cb: Cb): void;
  truncate(path: string, size: number, cb: Cb): void;
  ftruncate(path: string, fd: number, size: number, cb: Cb): void;
  chown(path: string, uid: number, gid: number, cb: Cb): void;
  chmod(path: string, mode: number, cb: Cb): void;
  mknod(path: string, mode: number, dev: number, cb: Cb): void;
  setxattr(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
  removexattr(path: string, name: string, cb: Cb): void;
  open(path: string, flags: number, cb: ValueCb<number>): void;
  write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void;
  release(path: string, fd: number, cb: Cb): void;
  create(path: string, mode: number, cb: ValueCb<number>): void;
  utimens(path: string, atime: TimeSpec, mtime: TimeSpec, cb: Cb): void;
  unlink(path: string, cb: Cb): void;
  rename(src: string, dest: string, cb: Cb): void;
  link(src: string, dest: string, cb: Cb): void;
  symlink(target: string, path: string, cb: Cb): void;
  mkdir(path: string, mode: number, cb: Cb): void;
  rmdir(path: string, cb: Cb): void;
}

export interface FuseOptions {
  timeout?: false;
  force?: boolean;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  fsname?: string;
  subtype?: string;
  autoCache?: boolean;
  entryTimeout?: number;
  negativeTimeout?: number;
  attrTimeout?: number;
  bigWrites?: boolean;
  maxWrite?: number;
  useIno?: boolean;
  extraOptions?: string[];
  onExit?: () => void;
  /** Serve read-only operations on the FUSE threads straight from this directory. */
  passthroughRoot?: string;
  /** Serve writes on the FUSE threads, journaled into this journal state (src/native/fastwrite.ts) as volume fastVol. */
  fastJournal?: ArrayBuffer;
  fastVol?: string;
}

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

export interface FuseCaller {
  uid: number;
  gid: number;
  pid: number;
  killSuidgid: boolean;
}

interface FuseClass {
  new (mnt: string, ops: Partial<FuseOps>, opts: FuseOptions): FuseInstance;
  /** The caller of the request being handled (read it synchronously, at the start of the op):
   *  `killSuidgid` when the kernel leaves clearing setuid/setgid to us (a write or truncate by a
   *  caller without CAP_FSETID; FUSE_HANDLE_KILLPRIV_V2, docs/ARCHITECTURE.md "Setuid, setgid and capabilities"). */
  context(): FuseCaller;
}

const require = createRequire(import.meta.url);
export const Fuse: FuseClass = require('fuse-native');
