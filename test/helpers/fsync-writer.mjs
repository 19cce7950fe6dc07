// Crash-test workload, run as its own process: writes unique files, fsyncs each and only then
// prints "<name> <sha256>" (so every printed file was acknowledged durable), while a second loop
// makes unsynced changes. Runs until the mount fails under it. Synced files are up to 300,000 bytes
// (or the third argument). With a fourth argument `ring`, a third loop overwrites the blocks of one
// file, `ring`, in turn (as a database's log is rewritten in place), fdatasyncing each and only then
// printing "ring <i>": block i % 64 holds i (u32 LE, then the byte i & 255). Across runs it goes on
// from the highest i in the file.
import { createHash } from 'node:crypto';
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';

const [root, tag, maxBytes = '300000', mode = ''] = process.argv.slice(2);
const RING_BLOCKS = 64;
const BLOCK = 4096;
await fsp.mkdir(join(root, 'synced'), { recursive: true });
await fsp.mkdir(join(root, 'scratch'), { recursive: true });
let stop = false;

async function synced() {
  for (let i = 0; !stop; i++) {
    const name = `synced/${tag}-${i}`;
    const data = Buffer.alloc(1 + Math.floor(Math.random() * Number(maxBytes)), i & 255);
    const fh = await fsp.open(join(root, name), C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
    await fh.write(data);
    await fh.sync();
    await fh.close();
    process.stdout.write(`${name} ${createHash('sha256').update(data).digest('hex')}\n`);
  }
}

async function scratch() {
  for (let i = 0; !stop; i++) {
    const f = join(root, 'scratch', `s${i % 7}`);
    await fsp.appendFile(f, Buffer.alloc(1 + (i % 9000), i & 255));
    if (i % 5 === 0) await fsp.rename(f, join(root, 'scratch', `s${(i + 3) % 7}`));
    if (i % 11 === 0) await fsp.truncate(f, i % 1000).catch(() => {});
  }
}

async function ring() {
  const path = join(root, 'ring');
  let fh;
  try {
    fh = await fsp.open(path, 'r+');
  } catch {
    fh = await fsp.open(path, 'w+');
    await fh.write(Buffer.alloc(RING_BLOCKS * BLOCK), 0, RING_BLOCKS * BLOCK, 0);
    await fh.sync();
  }
  process.stdout.write('ring ready\n');
  const all = Buffer.alloc(RING_BLOCKS * BLOCK);
  await fh.read(all, 0, all.length, 0);
  let i = 0;
  for (let b = 0; b < RING_BLOCKS; b++) i = Math.max(i, all.readUInt32LE(b * BLOCK));
  for (i++; !stop; i++) {
    const block = Buffer.alloc(BLOCK, i & 255);
    block.writeUInt32LE(i, 0);
    await fh.write(block, 0, BLOCK, (i % RING_BLOCKS) * BLOCK);
    await fh.datasync();
    process.stdout.write(`ring ${i}\n`);
  }
}

try {
  await Promise.all([synced(), scratch(), ...(mode === 'ring' ? [ring()] : [])]);
} catch {
  stop = true;
  process.exit(0);
}
