// Writes journaled by reference (docs/ARCHITECTURE.md, "Large writes by reference"): a `wref`
// record holds no data; its bytes are read back from the live file, through its handle, and every
// byte changed since comes from the earliest `pre` record (a pre-image) after the `wref` that holds
// it. The CRC the record carries then checks the result: a reference that cannot be resolved (its
// file changed without a pre-image, e.g. while the group was degraded or after a power loss) is
// RefLostError, never wrong data.
import { constants as C } from 'node:fs';
import { crc32 } from 'node:zlib';
import { EpochfsError } from '../util/errors.js';
import { readFully } from '../util/read.js';
import { JournalCursor } from './cursor.js';
import { HandleFiles } from './handles.js';
import type { Record } from './record.js';

export type WrefRecord = Extract<Record, { op: 'wref' }>;
export type PreRecord = Extract<Record, { op: 'pre' }>;
export type WriteRecord = Extract<Record, { op: 'write' }>;

/** A reference whose bytes are no longer to be had: the shadow (or replay) cannot be exact at it. */
export class RefLostError extends EpochfsError {
  constructor(rec: WrefRecord, why: string) {
    super('EREFLOST', `the write of record ${rec.seq} (${rec.path}, ${rec.length} bytes at ${rec.offset}) was journaled by reference and cannot be read back: ${why}`);
  }
}

/**
 * Resolves `wref` records in journal order. It reads the journal ahead of them (to its current end,
 * after reading each file), keeping only the `pre` records: the bytes a later operation changed. It
 * reads the files through their handles on the backing dirs the journal's mount markers name (the
 * caller passes those it reads; the ones ahead, such as a restarted daemon's, it finds itself).
 */
export class RefResolver {
  private readonly backings = new Map<string, string>();
  private readonly files = new HandleFiles((vol) => this.backings.get(vol), C.O_RDONLY);
  private ahead?: JournalCursor;
  private aheadNext = 0;
  /** the last record resolved: pre-images up to it are dropped as it goes, so going back restarts */
  private last = 0;
  /** the last pre record read ahead */
  private lastPre = 0;
  /** pre records read ahead, by volume and handle, in journal order */
  private readonly pres = new Map<string, PreRecord[]>();

  constructor(private readonly stateDir: string) {}

  /** Volume `vol` is served from backing dir `backing` (a mount marker). */
  noteMount(vol: string, backing: string): void {
    if (this.backings.get(vol) === backing) return;
    this.backings.set(vol, backing);
    this.files.close(); // its files and dirs are opened again, under the new dir
  }

  close(): void {
    this.files.close();
  }

  /**
   * The write record `rec` stands for, with its bytes. `torn`: the last record of a killed daemon
   * (withRedone), which may have taken effect in part: the bytes the file holds are its effect, and
   * are taken without the CRC (up to the end of what the file and its pre-images hold).
   */
  resolve(rec: WrefRecord, torn = false): WriteRecord {
    const data = Buffer.alloc(rec.length);
    if (!this.backings.has(rec.vol!)) this.readAhead(rec.seq); // a restarted daemon's mount marker names it
    const fd = this.files.get(rec.vol!, rec.fh);
    const read = fd === undefined ? 0 : readFully(fd, data, rec.length, rec.offset);
    // after the read: every operation that changed the range before the read returned appended
    // its pre-image before it took effect, so the journal holds it by now
    this.readAhead(rec.seq);
    const { covered, end } = this.overlay(rec, data);
    const write = (bytes: Buffer): WriteRecord => ({ op: 'write', seq: rec.seq, t: rec.t, vol: rec.vol, path: rec.path, offset: rec.offset, data: bytes, fh: rec.fh });
    if (torn) return write(data.subarray(0, Math.max(read, end)));
    if (fd === undefined && covered < rec.length) throw new RefLostError(rec, 'its file is gone and no pre-image holds it');
    if (crc32(data) !== rec.crc) throw new RefLostError(rec, 'its bytes in the file changed without a pre-image');
    return write(data);
  }

  /**
   * Copies into `data` the earliest pre-image after `rec` of each of its bytes: the bytes so
   * covered, and the end of the last one (relative to the record's offset).
   */
  private overlay(rec: WrefRecord, data: Buffer): { covered: number; end: number } {
    const key = `${rec.vol}\0${rec.fh}`;
    const list = (this.pres.get(key) ?? []).filter((p) => p.seq > rec.seq);
    if (list.length) this.pres.set(key, list);
    else this.pres.delete(key);
    const taken = new Uint8Array(rec.length);
    let covered = 0;
    let end = 0;
    for (const pre of list) {
      const from = Math.max(pre.offset, rec.offset);
      const to = Math.min(pre.offset + pre.data.length, rec.offset + rec.length);
      for (let at = from; at < to; at++) {
        const i = at - rec.offset;
        if (taken[i]) continue;
        taken[i] = 1;
        data[i] = pre.data[at - pre.offset];
        covered++;
        end = Math.max(end, i + 1);
      }
    }
    return { covered, end };
  }

  /** Reads the journal from after `seq` to its current end, keeping the pre records. */
  private readAhead(seq: number): void {
    if (!this.ahead || this.aheadNext <= seq || seq < this.last) {
      // (re)start right after the record being resolved: what lies before it cannot hold its pre-images
      this.ahead = new JournalCursor(this.stateDir, seq + 1);
      this.aheadNext = seq + 1;
      this.lastPre = 0;
      this.pres.clear();
    }
    this.last = seq;
    for (const rec of this.ahead.read(Number.MAX_SAFE_INTEGER)) {
      this.aheadNext = rec.seq + 1;
      if (rec.op === 'mount' && !this.backings.has(rec.vol)) this.noteMount(rec.vol, rec.backing);
      // a pre read before (and rewound to) is the same record: no rollback takes a pre back
      if (rec.op !== 'pre' || rec.seq <= this.lastPre) continue;
      this.lastPre = rec.seq;
      const key = `${rec.vol}\0${rec.fh}`;
      const list = this.pres.get(key) ?? [];
      list.push({ ...rec, data: Buffer.from(rec.data) }); // a copy: the cursor's buffer is reused
      this.pres.set(key, list);
    }
    // the journal's last record may still be voided (a rollback, a write cut short): read it again next time
    this.ahead.rewindLast();
  }
}
