// epochfs restore builds each volume in a temporary sibling and renames it into place at the
// end: a restore that failed (a full disk) leaves nothing behind, and the retry succeeds.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';
import { backupDir } from '../helpers/store.js';

const PASS = 'restore-cli-pass';
const env = { EPOCHFS_PASSPHRASE: PASS };
let mounted: string | undefined;
afterEach(() => {
  if (mounted) execFileSync('umount', ['-l', mounted]);
  mounted = undefined;
});

describe('epochfs restore', () => {
  it('a restore that ran out of space leaves no partial tree; the retry succeeds', async () => {
    const dir = tempDir('restore-cli');
    const src = join(dir, 'vol');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'small'), 'small');
    writeFileSync(join(src, 'sub', 'zbig'), Buffer.alloc(3 << 20, 5));
    const store = join(dir, 'store');
    expect((await epochfs(['init', '--store', store], { env })).code).toBe(0);
    await backupDir(store, src, 'vol', PASS);
    const disk = join(dir, 'disk');
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]);
    mounted = disk;
    mkdirSync(join(disk, 'to')); // an existing --to stays, empty
    const failed = await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', join(disk, 'to')], { env });
    expect([failed.code, failed.stderr.trim()]).toEqual([1, `epochfs: ${join(disk, 'to', 'vol')}: no space left on device`]);
    expect(readdirSync(join(disk, 'to'))).toEqual([]);
    execFileSync('mount', ['-o', 'remount,size=16m', disk]);
    const retried = await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', join(disk, 'to')], { env });
    expect([retried.code, retried.stderr]).toEqual([0, expect.stringMatching(/restored epoch/)]);
    expect(readdirSync(join(disk, 'to'))).toEqual(['vol']);
    expect(readFileSync(join(disk, 'to', 'vol', 'sub', 'zbig')).equals(Buffer.alloc(3 << 20, 5))).toBe(true);
    // a second restore onto the complete one is refused and changes nothing
    const again = await epochfs(['restore', '--store', store, '--epoch', 'latest', '--to', join(disk, 'to')], { env });
    expect([again.code, again.stderr]).toEqual([4, expect.stringMatching(/is not empty/)]);
    expect(existsSync(join(disk, 'to', 'vol', 'sub', 'small'))).toBe(true);
    expect(readdirSync(join(disk, 'to'))).toEqual(['vol']);
  });
});
