// Power loss (issue 8 (e)), on the simulated disk of test/helpers/powerloss.ts (no device-mapper
// here: a FUSE disk with a volatile write cache under a loop device). First the harness itself:
// FLUSH and FUA reach the disk as fsync, a cut keeps what was flushed and drops what it should;
// then epochfs with its backing dir and state dir on that disk, cut at seeded points under a
// workload with fsyncs, restarted after each cut.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { makeDisk, powerOffAll, type CutReport, type PowerLossDisk } from '../helpers/powerloss.js';
import { makeVolume, type TestVolume } from '../helpers/volume.js';
import { startFsyncWriter, type FsyncWriter } from '../helpers/fsync-writer-process.js';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { prng } from '../helpers/workload.js';
import { diffTrees, snapshot } from '../helpers/tree.js';

const CUTS = 5;
const SEED = Number(process.env.EPOCHFS_POWERLOSS_SEED ?? 20261202);
const PASS = 'powerloss-test';
process.env.EPOCHFS_PASSPHRASE = PASS; // for the helpers' own epochfs calls (mount)
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };

let vol: TestVolume | undefined;
let writer: FsyncWriter | undefined;
afterAll(async () => {
  // also after a failure, with the disk dead under the daemon: kill, never a clean umount that would wait for it
  writer?.kill();
  if (vol) {
    try {
      vol.kill();
    } catch {
      // not running
    }
    await new Promise((res) => execFile('umount', ['-l', vol!.mnt], res));
  }
  await powerOffAll();
});

const BLOCK = 4096;

function dd(disk: PowerLossDisk, src: string, block: number, flags: { oflag: string; conv?: string }): Promise<void> {
  const args = [`if=${src}`, `of=${disk.device()}`, `bs=${BLOCK}`, `seek=${block}`, `oflag=${flags.oflag}`, `conv=notrunc${flags.conv ? `,${flags.conv}` : ''}`];
  return new Promise((res, rej) => execFile('dd', args, (err, _o, stderr) => (err ? rej(new Error(`dd ${args.join(' ')}: ${stderr}`)) : res())));
}

/** `count` blocks filled with `fill`, as a file for dd. */
function pattern(disk: PowerLossDisk, name: string, fill: number, count = 1): string {
  const path = join(disk.dir, `${name}.bin`);
  writeFileSync(path, Buffer.alloc(count * BLOCK, fill));
  return path;
}

/** The fill byte of each block of the durable image from `block` on (-1: mixed, a torn block). */
function blocksOf(disk: PowerLossDisk, block: number, count: number): number[] {
  const fd = openSync(disk.image, 'r');
  try {
    const buf = Buffer.alloc(count * BLOCK);
    readSync(fd, buf, 0, buf.length, block * BLOCK);
    return Array.from({ length: count }, (_, i) => {
      const b = buf.subarray(i * BLOCK, (i + 1) * BLOCK);
      return b.every((x) => x === b[0]) ? b[0] : -1;
    });
  } finally {
    closeSync(fd);
  }
}

describe('the power-loss disk (harness)', () => {
  it('FLUSH and FUA reach it as fsync; a cut keeps every flushed write and only the chosen unflushed ones', async () => {
    const disk = await makeDisk('pl-raw', 64);
    const at = 1000; // blocks written raw (no ext4 mounted)

    await disk.powerOn({ mount: false });
    const before = await disk.stats();
    await dd(disk, pattern(disk, 'a', 0xa1), at, { oflag: 'direct', conv: 'fsync' }); // write, then FLUSH
    const afterFlush = await disk.stats();
    expect(afterFlush.fsyncs).toBeGreaterThan(before.fsyncs);
    expect(afterFlush.unflushedWrites).toBe(0);
    await dd(disk, pattern(disk, 'b', 0xb2), at + 1, { oflag: 'direct' }); // no flush
    const unflushed = await disk.stats();
    expect([unflushed.unflushedWrites, unflushed.fsyncs]).toEqual([1, afterFlush.fsyncs]);
    await dd(disk, pattern(disk, 'c', 0xc3), at + 2, { oflag: 'direct,dsync' }); // FUA: write + FLUSH
    const afterFua = await disk.stats();
    expect(afterFua.fsyncs).toBeGreaterThan(afterFlush.fsyncs);
    expect(afterFua.unflushedWrites).toBe(0);
    await dd(disk, pattern(disk, 'd', 0xd4), at + 3, { oflag: 'direct' }); // lost below
    expect((await disk.cut(1, { mode: 'none' })).unflushedWrites).toBe(1);
    await expect(dd(disk, pattern(disk, 'e', 0xe5), at + 4, { oflag: 'direct' })).rejects.toThrow(/error/i); // no power
    await disk.powerOff();
    expect(blocksOf(disk, at, 5)).toEqual([0xa1, 0xb2, 0xc3, 0, 0]); // b: made durable by c's flush

    await disk.powerOn({ mount: false }); // what survived is what the disk serves now
    await dd(disk, pattern(disk, 'f', 0xf6), at + 5, { oflag: 'direct' });
    await disk.cut(2, { mode: 'all' });
    await disk.powerOff();
    expect(blocksOf(disk, at, 6)).toEqual([0xa1, 0xb2, 0xc3, 0, 0, 0xf6]);

    // torn: one 64 KiB write, each 4 KiB piece kept or lost on its own, never part of a piece
    await disk.powerOn({ mount: false });
    await dd(disk, pattern(disk, 'g', 0x77, 16), at + 16, { oflag: 'direct' });
    const torn = await disk.cut(3, { mode: 'subset' });
    await disk.powerOff();
    const pieces = blocksOf(disk, at + 16, 16);
    expect(pieces.every((b) => b === 0x77 || b === 0)).toBe(true);
    expect(pieces.filter((b) => b === 0x77).length).toBe(torn.keptPieces);
    expect(torn.keptPieces).toBe(7); // seed 3: some kept, some lost

    // in order: separate writes kept as a prefix
    await disk.powerOn({ mount: false });
    for (let i = 0; i < 8; i++) await dd(disk, pattern(disk, `h${i}`, 0x10 + i), at + 32 + i, { oflag: 'direct' });
    const prefix = await disk.cut(11, { mode: 'prefix' }); // seed 11: 5 of 8
    await disk.powerOff();
    expect(prefix.keptPieces).toBe(5);
    expect(blocksOf(disk, at + 32, 8)).toEqual([0x10, 0x11, 0x12, 0x13, 0x14, 0, 0, 0]);

    // armed: the loss comes at the write that makes 3 unflushed ones; later writes fail
    await disk.powerOn({ mount: false });
    const armed = disk.cut(6, { mode: 'all', atUnflushed: 3 });
    const results: boolean[] = [];
    for (let i = 0; i < 5; i++) results.push(await dd(disk, pattern(disk, `i${i}`, 0x20 + i), at + 48 + i, { oflag: 'direct' }).then(() => true, () => false));
    expect((await armed).unflushedWrites).toBe(3);
    await disk.powerOff();
    expect(results).toEqual([true, true, true, false, false]);
    expect(blocksOf(disk, at + 48, 5)).toEqual([0x20, 0x21, 0x22, 0, 0]);
  });

  it.each(['none', 'all', 'prefix', 'subset'] as const)('an ext4 on it, cut (%s): fsck is clean and the fsynced file is there', async (mode) => {
    const disk = await makeDisk(`pl-ext4-${mode}`, 128);
    await disk.powerOn();
    const synced = Buffer.alloc(300_000, 0x5a);
    const fd = openSync(join(disk.fs, 'synced'), 'w');
    writeSync(fd, synced);
    const beforeFsync = await disk.stats();
    fsyncSync(fd);
    expect((await disk.stats()).fsyncs).toBeGreaterThan(beforeFsync.fsyncs); // the ext4's FLUSH reached the disk
    writeSync(fd, Buffer.alloc(100_000, 0x6b)); // unsynced: may be gone
    closeSync(fd);
    writeFileSync(join(disk.fs, 'unsynced'), Buffer.alloc(50_000, 0x7c));
    // O_DIRECT: the data reaches the disk at once, unflushed, its metadata in an open ext4 transaction
    await new Promise((res) => execFile('dd', ['if=/dev/zero', `of=${join(disk.fs, 'direct')}`, 'bs=64k', 'count=16', 'oflag=direct'], res));
    const cut = await disk.cut(5, { mode });
    expect(cut.unflushedWrites).toBeGreaterThan(0);
    await disk.powerOff();

    const repair = await disk.fsck('-p'); // replays the ext4 journal
    expect(repair.code, repair.output).toBeLessThanOrEqual(1);
    const check = await disk.fsck('-n');
    expect(check.code, check.output).toBe(0);

    await disk.powerOn();
    const got = readFileSync(join(disk.fs, 'synced'));
    expect(got.subarray(0, synced.length).equals(synced)).toBe(true);
    expect([synced.length, synced.length + 100_000]).toContain(got.length);
    const size = (name: string) => {
      try {
        return readFileSync(join(disk.fs, name)).length;
      } catch {
        return 'gone'; // lost with the power
      }
    };
    console.log(`ext4 cut (${mode}): kept ${cut.keptBytes} of ${cut.unflushedBytes} unflushed bytes (${cut.unflushedWrites} writes); fsck -p ${repair.code}; synced ${got.length} bytes, unsynced ${size('unsynced')}, direct ${size('direct')}`);
    await disk.powerOff();
  });
});

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function initialTree(b: string): void {
  mkdirSync(join(b, 'etc'));
  writeFileSync(join(b, 'etc/conf'), 'x=1\n');
  writeFileSync(join(b, 'data'), Buffer.alloc(1 << 20, 5));
  symlinkSync('etc/conf', join(b, 'conf'));
}

describe('epochfs after a power loss', () => {
  it(`${CUTS} power losses at seeded points: every fsynced file survives, the journal opens, the store verifies, an epoch equals the live tree`, async () => {
    const disk = await makeDisk('pl-epochfs', 1024);
    await disk.powerOn();
    // the volume's backing dir and its state dir (journal, LevelDB, shipper shadow) on the disk;
    // the store elsewhere (a backup lives on another machine: it does not lose power with this one)
    vol = makeVolume('pl-vol', initialTree, { backing: join(disk.fs, 'backing'), state: join(disk.fs, 'state') });
    execFileSync('sync', ['-f', vol.backing]); // the initial tree is part of the disk before the first loss
    const store = join(vol.dir, 'store');
    await epochfsOk(['init', '--store', store], { env });
    const random = prng(SEED);
    const acknowledged: string[] = [];
    const ring = { ready: false, last: 0 };
    let journalOnlyFsyncs = 0;
    const cuts: (CutReport & { after: number })[] = [];
    const started = Date.now();

    for (let k = 0; ; k++) {
      process.env.EPOCHFS_BOOT_ID = randomUUID(); // a new boot: the daemon must see a power loss, not a kill
      await vol.mount(['--store', store, '--epoch-interval', '1s']); // opens the journal (a torn tail is cut)
      if (k > 0) await expectRecovered(vol, store, acknowledged, k);
      if (k > 0) expectRing(vol, ring, k);
      if (k === CUTS) break;

      writer = startFsyncWriter(vol.mnt, `c${k}`, { ring: true });
      await writer.started;
      const after = Math.floor(200 + random() * 1000);
      await new Promise((r) => setTimeout(r, after));
      journalOnlyFsyncs += await fsyncsByJournalAlone(vol);
      // the power goes while the disk's cache holds 1-8 writes; from then on the disk fails every write
      const cut = await disk.cut(Math.floor(random() * 2 ** 31), { atUnflushed: 1 + Math.floor(random() * 8) });
      cuts.push({ ...cut, after });
      console.log(`cut ${k + 1} after ${after} ms of writing (${cut.mode}): kept ${cut.keptBytes} of ${cut.unflushedBytes} unflushed bytes (${cut.unflushedWrites} writes), ${cut.fsyncs} flushes before`);
      vol.kill(); // everything above the disk goes with the power: the daemon, the writer, the page cache
      writer.kill();
      for (const line of await writer.done) {
        if (line === 'ring ready') ring.ready = true;
        else if (line.startsWith('ring ')) ring.last = Math.max(ring.last, Number(line.slice(5)));
        else acknowledged.push(line);
      }
      writer = undefined;
      await new Promise((res) => execFile('umount', ['-l', vol!.mnt], res));
      await disk.powerOff();

      const repair = await disk.fsck('-p'); // the ext4 replays its journal
      expect(repair.code, repair.output).toBeLessThanOrEqual(1);
      const check = await disk.fsck('-n');
      expect(check.code, check.output).toBe(0);
      await disk.powerOn();
    }
    await vol.umount();
    await disk.powerOff();
    vol = undefined;
    console.log(`seed ${SEED}: ${cuts.length} cuts in ${((Date.now() - started) / 1000).toFixed(1)} s; ${acknowledged.length} fsynced files checked after each; ring at ${ring.last}, ${journalOnlyFsyncs} fsyncs acknowledged by the journal alone`);
    expect(acknowledged.length).toBeGreaterThan(CUTS);
    // the redo was needed: fsyncs of the ring (and nothing else) were acknowledged by the journal alone
    expect(journalOnlyFsyncs).toBeGreaterThan(0);
  });
});

/** The daemon's count of fsyncs acknowledged by the journal alone (src/group/backing-sync.ts), so far. */
async function fsyncsByJournalAlone(v: TestVolume): Promise<number> {
  const lines = (await epochfsOk(['status', '--json'], { env })).trim().split('\n').filter(Boolean);
  const s = lines.map((l) => JSON.parse(l) as { volumes: { mountpoint: string }[]; journal: { fsyncs: { journalOnly: number } } }).find((x) => x.volumes.some((m) => m.mountpoint === v.mnt));
  return s?.journal.fsyncs.journalOnly ?? 0;
}

/**
 * The ring file (fsync-writer.mjs) after cut `k`: no acknowledged overwrite is lost and no block is
 * older than the last one written: with M its highest value (the last acknowledged, or the one after
 * it, written but not yet acknowledged), block b holds the highest i <= M with i % 64 == b.
 */
function expectRing(v: TestVolume, ring: { ready: boolean; last: number }, k: number): void {
  if (!ring.ready) return;
  const data = readFileSync(join(v.mnt, 'ring'));
  const blocks = Array.from({ length: 64 }, (_, b) => data.readUInt32LE(b * BLOCK));
  const m = Math.max(...blocks);
  expect([k, m >= ring.last && m <= ring.last + 1]).toEqual([k, true]);
  const expected = blocks.map((_, b) => (m >= b && b + 64 * Math.floor((m - b) / 64) > 0 ? b + 64 * Math.floor((m - b) / 64) : 0));
  expect([k, blocks]).toEqual([k, expected]);
  for (let b = 0; b < 64; b++) {
    const block = data.subarray(b * BLOCK, (b + 1) * BLOCK);
    expect([k, b, block.subarray(4).every((x) => x === (blocks[b] & 255))]).toEqual([k, b, true]);
  }
  ring.last = m; // the next run goes on from the highest value in the file
}

/** After the restart that follows cut `k`: what was promised is there, the journal reads, the store verifies, an epoch is the live tree. */
async function expectRecovered(v: TestVolume, store: string, acknowledged: string[], k: number): Promise<void> {
  for (const line of acknowledged) {
    const [name, sha] = line.split(' ');
    expect([k, name, sha256(join(v.mnt, name))]).toEqual([k, name, sha]);
  }
  const dump = (await epochfsOk(['journal', 'dump', '--state', v.state, '--json'])).trim().split('\n').map((l) => JSON.parse(l) as { op: string });
  expect(dump.some((r) => r.op === 'unclean')).toBe(true);
  const verify = await epochfs(['verify', '--store', store], { env });
  expect([k, verify.code, verify.stdout]).toEqual([k, 0, expect.stringMatching(/0 problems/)]);

  // An epoch now restores to the live tree (the group resyncs after a power loss; until that is done
  // it is degraded and refuses checkpoints with EDEGRADED).
  const epochMatchesLive = async (): Promise<string[]> => {
    const deadline = Date.now() + 60_000;
    let cp = await epochfs(['checkpoint', v.mnt, '--json'], { env });
    while (cp.code !== 0 && cp.stdout.includes('"EDEGRADED"') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      cp = await epochfs(['checkpoint', v.mnt, '--json'], { env });
    }
    if (cp.code !== 0) return [`checkpoint exited ${cp.code}: ${cp.stdout.trim()} ${cp.stderr.trim()}`];
    const restored = join(v.dir, `restored-${k}`);
    await epochfsOk(['restore', '--store', store, '--epoch', (JSON.parse(cp.stdout) as { epoch: string }).epoch, '--to', restored], { env });
    return diffTrees(snapshot(v.backing), snapshot(join(restored, 'backing')));
  };
  expect([k, await epochMatchesLive()]).toEqual([k, []]);
}
