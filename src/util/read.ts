// Reading a file at an offset until the bytes asked for or its end (readSync may return fewer).
import { readSync } from 'node:fs';

/** Reads up to `length` bytes of `fd` at `position` into `buf` (from its start); how many (fewer at the end of the file). */
export function readFully(fd: number, buf: Buffer, length: number, position: number): number {
  let n = 0;
  while (n < length) {
    const got = readSync(fd, buf, n, length - n, position + n);
    if (got === 0) break;
    n += got;
  }
  return n;
}
