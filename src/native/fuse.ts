// Typed access to fuse-native as patched by patches/fuse-native+2.2.6.patch (see docs/ARCHITECTURE.md,
// "The fuse-native patch"): nanosecond stat times and utimens, a JS-owned copy of write data, the
// caller's uid/gid/pid, big_writes/max_write and zero timeouts, and an exit callback.
import { createRequire } from 'node:module';
import type { TimeSpec } from './sys.js';

export type Cb = (result: number) => void;
export type ValueCb<T> = (result: number, value?: T) => void;

/** Stat as fuse-native's patched getStatArray takes it: numbers, plus *Ns bigints for exact times. */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

export interface FuseOps {
  init(cb: Cb): void;
  access(path: string, mode: number, cb: Cb): void;
  statfs(path: string, cb: ValueCb<FuseStatfs>): void;
  getattr(path: string, cb: ValueCb<FuseStat>): void;
  fgetattr(path: string, fd: number, cb: ValueCb<FuseStat>): void;
  flush(path: string, fd: number, cb: Cb): void;
  fsync(path: string, datasync: number, fd: number, cb: Cb): void;
  fsyncdir(path: string, datasync: number, fd: number, cb: Cb): void;
  readdir(path: string, cb: ValueCb<string[]>): void;
  truncate(path: string, size: number, cb: Cb): void;
  ftruncate(path: string, fd: number, size: number, cb: Cb): void;
  readlink(path: string, cb: ValueCb<string>): void;
  chown(path: string, uid: number, gid: number, cb: Cb): void;
  chmod(path: string, mode: number, cb: Cb): void;
  mknod(path: string, mode: number, dev: number, cb: Cb): void;
  setxattr(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
  getxattr(path: string, name: string, position: number, cb: ValueCb<Buffer>): void;
  listxattr(path: string, cb: ValueCb<string[]>): void;
  removexattr(path: string, name: string, cb: Cb): void;
  open(path: string, flags: number, cb: ValueCb<number>): void;
  read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void;
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
}

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

interface FuseClass {
  new (mnt: string, ops: Partial<FuseOps>, opts: FuseOptions): FuseInstance;
  context(): { uid: number; gid: number; pid: number };
}

const require = createRequire(import.meta.url);
export const Fuse: FuseClass = require('fuse-native');
