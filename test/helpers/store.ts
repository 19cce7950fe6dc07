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
