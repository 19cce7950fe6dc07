// A directory stored as an epoch without a mount: a snapshot of it written straight into a store.
import { LocalBackend } from '../../src/store/backends/local.js';
import { BlobStore } from '../../src/store/blobs.js';
import { writeEpoch } from '../../src/store/epochs.js';
import { Repository } from '../../src/store/repository.js';
import { snapshotDirectory } from '../../src/store/snapshot.js';

export async function backupDir(storeDir: string, dir: string, name: string, pass: string, parent: string | null = null): Promise<{ id: string; bytesAdded: number }> {
  const repo = await Repository.open(new LocalBackend(storeDir), Buffer.from(pass));
  const blobs = await BlobStore.load(repo);
  const snap = await snapshotDirectory(blobs, dir, repo.config.chunkSize);
  await blobs.flush();
  const record = {
    time: new Date().toISOString(), group: name, seq: 0, parent, bytesAdded: blobs.bytesAdded,
    volumes: [{ name, tree: snap.tree, root: snap.root, files: snap.files, bytes: snap.bytes }],
  };
  return { id: await writeEpoch(repo, record), bytesAdded: blobs.bytesAdded };
}

/** Anything a tree entry could say, hostile or not: the writer API stores it as given. */
export type RawEntry = { [field: string]: unknown };

/**
 * A store holding one epoch whose trees are written as given (issue 8: hostile store): `build`
 * gets functions that store a data blob or a tree of raw entries and returns the volumes.
 */
export async function writeRawEpoch(
  storeDir: string, pass: string,
  build: (put: { data(bytes: Buffer): Promise<string>; tree(entries: RawEntry[]): Promise<string> }) => Promise<{ name: string; tree: string }[]>,
): Promise<string> {
  const repo = await Repository.open(new LocalBackend(storeDir), Buffer.from(pass));
  const blobs = await BlobStore.load(repo);
  const volumes = await build({
    data: (bytes) => blobs.put('data', bytes),
    tree: (entries) => blobs.put('tree', Buffer.from(JSON.stringify({ entries }))),
  });
  await blobs.flush();
  const root = { mode: 0o40755, uid: 0, gid: 0, mtime: '1500000000000000000' };
  return writeEpoch(repo, {
    time: new Date().toISOString(), group: 'g', seq: 0, parent: null, bytesAdded: blobs.bytesAdded,
    volumes: volumes.map((v) => ({ ...v, root, files: 1, bytes: 0 })),
  });
}
