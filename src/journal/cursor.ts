// Reading the journal in order, straight from its segment files (the running daemon holds the
// LevelDB lock, so readers such as `journal dump` and later the shipper never need it).
import { JournalCorruptError } from '../util/errors.js';
import { journalDir, listSegments } from './journal.js';
import type { Record } from './record.js';
import { scanSegment, segmentFirstSeq, segmentPath } from './segment.js';

export interface ReadOptions {
  fromSeq?: number;
  toSeq?: number;
  /** Fail on a damaged record instead of treating it as the end of the log (default true). */
  strict?: boolean;
}

/** The first sequence number each segment holds, in segment order. */
function segmentStarts(dir: string, segments: number[]): number[] {
  return segments.map((n) => segmentFirstSeq(segmentPath(dir, n)));
}

export function* readJournal(stateDir: string, opts: ReadOptions = {}): Generator<Record> {
  const dir = journalDir(stateDir);
  const segments = listSegments(dir);
  const from = opts.fromSeq ?? 1;
  const to = opts.toSeq ?? Number.MAX_SAFE_INTEGER;
  const starts = segmentStarts(dir, segments);
  let expected: number | undefined;
  for (let i = 0; i < segments.length; i++) {
    if (i + 1 < segments.length && starts[i + 1] <= from) continue;
    const last = i === segments.length - 1;
    // Only the newest segment may end in a torn record (the daemon may be writing it right now).
    for (const { record } of scanSegment(segmentPath(dir, segments[i]), { strict: opts.strict !== false && !last })) {
      if (expected !== undefined && record.seq !== expected) {
        throw new JournalCorruptError(`journal: record ${expected} missing (found ${record.seq})`);
      }
      expected = record.seq + 1;
      if (record.seq < from) continue;
      if (record.seq > to) return;
      yield record;
    }
  }
}

/**
 * A reader that keeps its place: each read() resumes at the record after the last one it
 * returned, instead of scanning its segment from the start (the shipper reads the journal in
 * steps, one barrier at a time, while the daemon keeps appending).
 */
export class JournalCursor {
  private seg?: number;
  private offset = 0;
  /** where the last record returned began (see rewindLast) */
  private lastFrame?: { seg: number; offset: number; seq: number };

  constructor(private readonly stateDir: string, private next: number) {}

  *read(toSeq: number): Generator<Record> {
    const dir = journalDir(this.stateDir);
    const segments = listSegments(dir);
    let i = this.seg === undefined ? -1 : segments.indexOf(this.seg);
    if (i < 0) {
      // (re)locate: the segment holding `next` is the last one starting at or before it
      const starts = segmentStarts(dir, segments);
      i = Math.max(0, starts.findLastIndex((s) => s <= this.next));
      this.seg = undefined;
    }
    for (; i < segments.length; i++) {
      const last = i === segments.length - 1;
      const startOffset = segments[i] === this.seg ? this.offset : 0;
      for (const { record, offset, length } of scanSegment(segmentPath(dir, segments[i]), { strict: !last, startOffset })) {
        if (record.seq < this.next) continue;
        if (record.seq !== this.next) throw new JournalCorruptError(`journal: record ${this.next} missing (found ${record.seq})`);
        if (record.seq > toSeq) return;
        this.seg = segments[i];
        this.lastFrame = { seg: segments[i], offset, seq: record.seq };
        this.offset = offset + length;
        this.next = record.seq + 1;
        yield record;
      }
    }
  }

  /**
   * The next read starts again at the last record returned: a reader at the journal's live end may
   * have read a record that is voided (and another written in its place) after it read it.
   */
  rewindLast(): void {
    if (!this.lastFrame) return;
    ({ seg: this.seg, offset: this.offset, seq: this.next } = this.lastFrame);
    this.lastFrame = undefined;
  }
}
