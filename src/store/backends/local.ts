// The local directory backend, the embedded default: <dir>/<kind>/<name>, packs fanned out by their
// first two hex digits. put writes a temporary file, fsyncs it, links it into place (link fails if
// the name exists, so nothing is ever overwritten) and fsyncs the directory.
import { open, mkdir, readFile, readdir, rm, stat, link, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectExistsError, ObjectNotFoundError, checkName, type Backend, type ObjectKind } from '../backend.js';

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class LocalBackend implements Backend {
  constructor(readonly dir: string) {}

  get location(): string {
    return this.dir;
  }

  private dirOf(kind: ObjectKind, name: string): string {
    return kind === 'packs' ? join(this.dir, kind, name.slice(0, 2)) : join(this.dir, kind);
  }

  private pathOf(kind: ObjectKind, name: string): string {
    checkName(name);
    return join(this.dirOf(kind, name), name);
  }

  async put(kind: ObjectKind, name: string, data: Buffer): Promise<void> {
    const path = this.pathOf(kind, name);
    const dir = this.dirOf(kind, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ObjectExistsError(kind, name);
      throw err;
    } finally {
      await unlink(tmp).catch(() => {});
    }
    await fsyncDir(dir);
  }

  async get(kind: ObjectKind, name: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(kind, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(kind, name);
      throw err;
    }
  }

  async getRange(kind: ObjectKind, name: string, offset: number, length: number): Promise<Buffer> {
    let fh;
    try {
      fh = await open(this.pathOf(kind, name), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(kind, name);
      throw err;
    }
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async stat(kind: ObjectKind, name: string): Promise<{ size: number } | undefined> {
    try {
      return { size: (await stat(this.pathOf(kind, name))).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async *list(kind: ObjectKind): AsyncIterable<string> {
    const top = join(this.dir, kind);
    let names: string[];
    try {
      names = await readdir(top);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const n of names) {
      if (n.startsWith('.tmp-')) continue;
      if (kind === 'packs') {
        for (const m of await readdir(join(top, n))) if (!m.startsWith('.tmp-')) yield m;
      } else yield n;
    }
  }

  async probe(): Promise<void> {
    const tmp = join(this.dir, `.probe-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile('probe');
      await fh.sync();
    } finally {
      await fh.close();
      await unlink(tmp).catch(() => {});
    }
  }

  async delete(kind: ObjectKind, name: string): Promise<void> {
    await rm(this.pathOf(kind, name), { force: true });
  }
}

