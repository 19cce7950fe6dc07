// The group journal's append state, shared with the writes served in C on the FUSE threads
// (native/fastwrite.c, compiled into the patched binding; docs/ARCHITECTURE.md, "Writes in C").
// It lives in an ArrayBuffer the binding made, with the mutex that orders every append in it.
import { createRequire } from 'node:module';
import { clockAnchors } from '../util/clock.js';

export type FastField =
  | 'nextSeq' | 'offset' | 'limit' | 'budget' | 'records' | 'bytes' | 'fd' | 'preallocated'
  | 'armed' | 'held' | 'broken' | 'writes' | 'fallbacks'
  | 'durable' | 'rotations' | 'rotationsSynced' | 'synced' | 'required' | 'syncFailed' | 'syncErrno'
  | 'fsyncs' | 'fsyncFallbacks' | 'syncCalls' | 'faultSyncAt' | 'unlinks' | 'unlinkFallbacks'
  | 'refWindow' | 'refMin' | 'unread' | 'refAt' | 'journalOnlyAt' | 'refWrites' | 'refEntries';

interface FastWriteBinding {
  journal(): ArrayBuffer;
  lock(state: ArrayBuffer): void;
  unlock(state: ArrayBuffer): void;
  fd(fd: number, handle: string | null, nameChanged?: number): void;
  nameChanged(fd: number, seq: number): void;
  refsTake(state: ArrayBuffer, fh: string, from: number, to: number): number[];
  refsAdd(state: ArrayBuffer, fh: string, from: number, to: number, seq: number): boolean;
  refsRead(state: ArrayBuffer, seq: number): void;
  refsUnread(state: ArrayBuffer, fh: string): number;
  layout: { fields: { [f in FastField]: number }; clockOffset: number; size: number };
}

let loaded: FastWriteBinding | undefined;
/** Loaded on first use: what only reads a journal (the shipper's worker, the CLI) never loads libfuse. */
function binding(): FastWriteBinding {
  return (loaded ??= (createRequire(import.meta.url)('fuse-native') as { fastwrite: FastWriteBinding }).fastwrite);
}

export class FastWriteState {
  /** what a mount passes to the binding (FuseOptions.fastJournal) */
  readonly buffer = binding().journal();
  private readonly index = binding().layout.fields;
  private readonly fields = new Float64Array(this.buffer, 0, Object.keys(this.index).length);

  constructor() {
    const clock = new BigUint64Array(this.buffer, binding().layout.clockOffset, 2);
    const { wall, mono } = clockAnchors();
    clock[0] = wall;
    clock[1] = mono;
  }

  get(field: FastField): number {
    return this.fields[this.index[field]];
  }

  set(field: FastField, value: number): void {
    this.fields[this.index[field]] = value;
  }

  /** Blocks until no write is being served in C (each holds it for page-cache syscalls only). */
  lock(): void {
    binding().lock(this.buffer);
  }

  unlock(): void {
    binding().unlock(this.buffer);
  }

  // The unread references of writes by reference (native/fastwrite.c, "refs"); each called holding the lock.

  // Files are named by volume and handle: a handle is unique within one filesystem only.

  /** Takes the unread parts of [from, to) of file `fh` of `vol` out of the table: [from, to) pairs, whose pre-images the caller journals. */
  takeRefs(vol: string, fh: string, from: number, to: number): [number, number][] {
    const flat = binding().refsTake(this.buffer, `${vol}:${fh}`, from, to);
    const pieces: [number, number][] = [];
    for (let i = 0; i < flat.length; i += 2) pieces.push([flat[i], flat[i + 1]]);
    return pieces;
  }

  /** A reference of record `seq` (of file `fh` of `vol`) is unread (found in the journal at a start); false when it could not be kept. */
  addRef(vol: string, fh: string, from: number, to: number, seq: number): boolean {
    return binding().refsAdd(this.buffer, `${vol}:${fh}`, from, to, seq);
  }

  /** The bytes of file `fh` of `vol` the shipper has not read yet. */
  unreadOf(vol: string, fh: string): number {
    return binding().refsUnread(this.buffer, `${vol}:${fh}`);
  }

  /** The shipper has read every reference up to record `seq` (Infinity: forget them all). */
  refsRead(seq: number): void {
    binding().refsRead(this.buffer, seq);
  }
}

/**
 * Writes through backing fd `fd` may be served in C, journaled with file handle `handle`; so may its
 * fsyncs, by the journal alone, once the backing sync point passes record `nameChanged` (the last
 * change of its file's name, BackingSync.changedAt; -1: never).
 */
export function serveWritesInC(fd: number, handle: string | undefined, nameChanged: number): void {
  binding().fd(fd, handle ?? '', nameChanged);
}

/** The name of fd's file changed at record `seq`: its fsyncs wait for the backing file until a sync point passes it. */
export function nameChangedInC(fd: number, seq: number): void {
  binding().nameChanged(fd, seq);
}

/** Writes through `fd` go to JS again (before it is closed: its number may be reused). */
export function stopServingWritesInC(fd: number): void {
  binding().fd(fd, null);
}
