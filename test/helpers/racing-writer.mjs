// A writer process for the write-ordering tests: `node racing-writer.mjs <file> <tag> <writes> <seed> [flags]`
// writes 4 KiB blocks filled with byte <tag> at random block offsets of <file> (16 blocks), with a
// truncate or an fsync now and then, racing the other writers on the same blocks. The last write
// of each block wins on the backing dir, and must win in the journal's order too.
import { openSync, writeSync, ftruncateSync, fsyncSync, closeSync, constants as C } from 'node:fs';

const [file, tag, writes, seed, flags] = process.argv.slice(2);
let a = Number(seed) >>> 0;
const rand = () => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = Math.imul(a ^ (a >>> 15), a | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const BLOCK = 4096;
const block = Buffer.alloc(BLOCK, Number(tag));
const fd = openSync(file, C.O_RDWR | C.O_CREAT | (flags === 'sync' ? C.O_DSYNC : 0), 0o644);
for (let i = 0; i < Number(writes); i++) {
  const r = rand();
  if (r < 0.01) ftruncateSync(fd, Math.floor(rand() * 16) * BLOCK);
  else if (r < 0.02) fsyncSync(fd);
  else writeSync(fd, block, 0, BLOCK, Math.floor(rand() * 16) * BLOCK);
}
closeSync(fd);
