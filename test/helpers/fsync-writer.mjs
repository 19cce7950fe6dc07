// Crash-test workload, run as its own process: writes unique files, fsyncs each and only then
// prints "<name> <sha256>" (so every printed file was acknowledged durable), while a second loop
// makes unsynced changes. Runs until the mount fails under it. Synced files are up to 300,000 bytes
// (or the third argument).
import { createHash } from 'node:crypto';
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';

const [root, tag, maxBytes = '300000'] = process.argv.slice(2);
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

try {
  await Promise.all([synced(), scratch()]);
} catch {
  stop = true;
  process.exit(0);
}
