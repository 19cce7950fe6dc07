// Epoch records: the last object written for an epoch, after its packs and index
// (docs/ARCHITECTURE.md, "Epoch").
import { EpochfsError } from '../util/errors.js';
import type { Repository } from './repository.js';
import type { NodeMeta } from './tree.js';

export interface EpochVolume {
  name: string;
  tree: string;
  root: NodeMeta;
  files: number;
  bytes: number;
}

export interface EpochRecord {
  time: string;
  group: string;
  seq: number;
  parent: string | null;
  volumes: EpochVolume[];
  bytesAdded: number;
}

export interface Epoch extends EpochRecord {
  id: string;
}

export async function writeEpoch(repo: Repository, record: EpochRecord): Promise<string> {
  return repo.putObject('epochs', Buffer.from(JSON.stringify(record)));
}

/** Every epoch in the store, oldest first. */
export async function listEpochs(repo: Repository): Promise<Epoch[]> {
  const out: Epoch[] = [];
  for await (const id of repo.backend.list('epochs')) {
    out.push({ id, ...(JSON.parse((await repo.getObject('epochs', id)).toString()) as EpochRecord) });
  }
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.seq - b.seq));
}

/** An epoch by id, unique id prefix, or 'latest'. */
export async function findEpoch(repo: Repository, ref: string): Promise<Epoch> {
  const all = await listEpochs(repo);
  if (ref === 'latest') {
    const last = all[all.length - 1];
    if (!last) throw new EpochfsError('ENOEPOCH', `the store at ${repo.backend.location} has no epochs yet`);
    return last;
  }
  const matches = all.filter((e) => e.id.startsWith(ref));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new EpochfsError('ENOEPOCH', `no epoch ${ref} in the store at ${repo.backend.location}`);
  throw new EpochfsError('EUSAGE', `epoch id prefix ${ref} is ambiguous (${matches.length} epochs)`);
}
