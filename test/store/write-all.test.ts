// issue 8: restore wrote each chunk with one writeSync and ignored how much it wrote; a short
// write (a signal, a full quota's last bytes) lost the rest silently. writeAll continues it.
import { describe, expect, it } from 'vitest';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeAll } from '../../src/store/restore.js';
import { tempDir } from '../helpers/env.js';

describe('writeAll', () => {
  it('continues short writes until every byte is written, at the right offsets', () => {
    const path = join(tempDir('writeall'), 'f');
    const fd = openSync(path, 'w');
    const data = Buffer.from('0123456789abcdefghij');
    const short = ((f: number, b: Buffer, off: number, len: number, pos: number) => writeSync(f, b, off, Math.min(len, 3), pos)) as typeof writeSync;
    writeAll(fd, path, data, 5, short);
    closeSync(fd);
    expect(readFileSync(path).equals(Buffer.concat([Buffer.alloc(5), data]))).toBe(true);
  });

  it('throws when a write makes no progress', () => {
    expect(() => writeAll(0, '/some/file', Buffer.from('x'), 0, (() => 0) as unknown as typeof writeSync)).toThrow('/some/file: write returned 0');
  });
});
