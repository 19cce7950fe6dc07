// Large writes by reference, the group's side (docs/ARCHITECTURE.md, "Large writes by reference"):
// C journals a large write as a `wref` record and keeps its range as unread (native/fastwrite.c,
// "refs"); this turns it on when the group ships, brings the unread ranges back from the journal at a
// start, drops them as the shipper reads them, and journals the pre-images of unread bytes an
// operation in JS is about to change.
import { closeSync } from 'node:fs';
import { readFully } from '../util/read.js';
import { nowNs } from '../util/clock.js';
import { readJournal } from '../journal/cursor.js';
import type { Journal } from '../journal/journal.js';
import type { NewRecord } from '../journal/record.js';
import type { WrefRecord } from '../journal/refs.js';

/** Writes of at least this many bytes go by reference (a full FUSE request of libfuse 2 is 128 KiB). */
export const REF_MIN = 64 * 1024;
/**
 * Unread bytes at most (EPOCHFS_REF_WINDOW changes it; 0 turns references off), and at most a
 * quarter of the local buffer: what the shipper reads at its next epoch, so it must hold an epoch
 * interval's large writes (bench/fs.sh: a 512 MiB write under 1 s epochs went half by reference
 * with 256 MiB), and what one truncate of a file just written may copy into the journal first.
 */
export const DEFAULT_REF_WINDOW = 1024 * 1024 * 1024;
/** Files kept open at most, whose last name went before the shipper read them (beyond: their bytes are copied). */
const HELD_MAX = 256;
/**
 * A file whose last name goes with fewer unread bytes than this has them copied as pre-images (they
 * survive a kill -9, a held file does not: its references are then lost, and the group resyncs whole).
 */
const HOLD_FROM = 8 * 1024 * 1024;
/** A pre-image is journaled in records of at most this many bytes. */
const PRE_RECORD_MAX = 1024 * 1024;

/** To end of file, for a range [from, TO_END). */
export const TO_END = 2 ** 53;

/** The window of a group whose local buffer holds `bufferMax` bytes. */
export function refWindowOf(env: NodeJS.ProcessEnv, bufferMax: number, log: (m: string) => void): number {
  const raw = env.EPOCHFS_REF_WINDOW;
  let window = DEFAULT_REF_WINDOW;
  if (raw !== undefined && raw !== '') {
    if (/^\d+$/.test(raw)) window = Number(raw);
    else log(`EPOCHFS_REF_WINDOW=${JSON.stringify(raw)} is not a number of bytes; the default is used`);
  }
  // pre-images go into the journal: a truncate copying the whole window must not fill the buffer
  return Math.min(window, Math.floor(bufferMax / 4));
}

export class WriteRefs {
  private preImageRecords = 0;
  /** files whose last name is gone, kept open (so reachable by handle) until the shipper has read past `until` */
  private readonly held = new Map<string, { fd: number; until: number }>();

  constructor(private readonly journal: Journal, private readonly stateDir: string) {}

  /**
   * From now on C may journal large writes by reference, `window` unread bytes at most. The
   * references of the journal's records (a restart: the shipper has not read them all) are unread
   * again first; holding a few already read costs only pre-images nobody needs.
   */
  enable(window: number): void {
    if (window <= 0) return;
    const refs: WrefRecord[] = []; // read before the lock is taken (the journal may be long)
    for (const rec of readJournal(this.stateDir)) if (rec.op === 'wref') refs.push(rec);
    this.journal.exclusive(() => {
      const f = this.journal.fast;
      for (const rec of refs) f.addRef(rec.vol!, rec.fh, rec.offset, rec.offset + rec.length, rec.seq);
      f.set('journalOnlyAt', -1);
      f.set('refMin', REF_MIN);
      f.set('refWindow', window);
    });
  }

  /** The shipper has read every reference up to record `seq`. */
  read(seq: number): void {
    if (this.any) this.journal.exclusive(() => this.journal.fast.refsRead(seq));
    for (const [key, h] of this.held) if (h.until <= seq) this.release(key);
  }

  /** The group degraded: no reference is read any more, nothing is held for one. Call holding the lock. */
  forget(): void {
    this.journal.fast.refsRead(Infinity);
    for (const key of [...this.held.keys()]) this.release(key);
  }

  private release(key: string): void {
    closeSync(this.held.get(key)!.fd);
    this.held.delete(key);
  }

  /**
   * The last name of file `fh` of volume `vol` is about to go (an unlink, a rename over it): its
   * unread bytes must stay readable. From HOLD_FROM of them on the file is kept open (`open` gives
   * an fd), so the shipper still reaches it by its handle and nothing is copied; fewer (or once
   * HELD_MAX files are held), they are journaled as pre-images through `begin`. Call it holding the journal's lock.
   */
  keepVictim(vol: string, fh: string, open: () => number, begin: (rec: NewRecord) => void): void {
    const key = `${vol}\0${fh}`;
    const held = this.held.get(key);
    // held already (an unlink that failed after it was held, then written again): held longer
    if (held) return void (held.until = this.journal.lastSeq);
    const unread = this.journal.fast.unreadOf(vol, fh);
    if (unread === 0) return;
    if (unread < HOLD_FROM || this.held.size >= HELD_MAX) return this.preImages(vol, fh, 0, TO_END, open, begin);
    // every reference of the file is at or before the last record: held until the shipper read that far
    this.held.set(key, { fd: open(), until: this.journal.lastSeq });
  }

  /** Writes journaled by reference since the start, pre-images journaled, and the bytes the shipper has not read yet. */
  get status(): { writes: number; preImages: number; held: number; unreadBytes: number; window: number } {
    const f = this.journal.fast;
    return { writes: f.get('refWrites'), preImages: this.preImageRecords, held: this.held.size, unreadBytes: f.get('unread'), window: f.get('refWindow') };
  }

  /** Are there unread references (any operation in JS that changes file bytes must ask preImages)? */
  get any(): boolean {
    return this.journal.fast.get('refEntries') > 0;
  }

  /**
   * Journals, through `begin`, the bytes the file `fh` of volume `vol` holds in [from, to) where they
   * are unread, before an operation changes them; `open` gives a readable fd of the file. Call it
   * holding the journal's lock, in the locked section of that operation, before its record.
   */
  preImages(vol: string, fh: string, from: number, to: number, open: () => number, begin: (rec: NewRecord) => void): void {
    const pieces = this.journal.fast.takeRefs(vol, fh, from, to);
    if (pieces.length === 0) return;
    const fd = open();
    try {
      for (const [start, end] of pieces) {
        for (let offset = start; offset < end; offset += PRE_RECORD_MAX) {
          const data = Buffer.allocUnsafe(Math.min(PRE_RECORD_MAX, end - offset));
          const n = readFully(fd, data, data.length, offset);
          if (n === 0) break;
          begin({ op: 'pre', t: nowNs(), vol, fh, offset, data: data.subarray(0, n) });
          this.preImageRecords++;
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
