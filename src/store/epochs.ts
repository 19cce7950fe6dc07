// Epoch records: the last object written for an epoch, after its packs and index
// (docs/ARCHITECTURE.md, "Epoch"). `latest` and id prefixes resolve within one group.
import { EpochfsError, UsageError } from '../util/errors.js';
import type { Repository } from './repository.js';
import { badNameReason, type NodeMeta } from './tree.js';

export interface EpochVolume {
  name: string;
  tree: string;
  root: NodeMeta;
  files: number;
  bytes: number;
  /** not mounted at the barrier: its state when it left the group, carried forward */
  detached?: true;
}

export interface EpochRecord {
  time: string;
  group: string;
  seq: number;
  parent: string | null;
  volumes: EpochVolume[];
  bytesAdded: number;
  /** the group was still being assembled: `missing` volumes had not joined yet */
  partial?: true;
  missing?: string[];
}

export interface Epoch extends EpochRecord {
  id: string;
}

/** Which epochs a reference may name: one group's, and (for `latest`) ones holding a volume. */
export interface EpochScope {
  group?: string;
  volume?: string;
}

export async function writeEpoch(repo: Repository, record: EpochRecord): Promise<string> {
  return repo.putObject('epochs', Buffer.from(JSON.stringify(record)));
}

/**
 * An epoch record's JSON, checked (issue 8: hostile store): a volume's name becomes a directory
 * under restore's --to, so it is one path component like a tree entry's.
 */
export function parseEpochRecord(buf: Buffer, id: string): EpochRecord {
  const corrupt = (reason: string) => new EpochfsError('EOBJECTCORRUPT', `epochs/${id}: ${reason}`);
  let r: EpochRecord;
  try {
    r = JSON.parse(buf.toString());
  } catch {
    throw corrupt('is not valid JSON');
  }
  if (typeof r !== 'object' || r === null || typeof r.group !== 'string' || typeof r.time !== 'string' || typeof r.seq !== 'number' || !Array.isArray(r.volumes)) {
    throw corrupt('is not an epoch record');
  }
  const names = new Set<string>();
  for (const v of r.volumes as unknown[] as EpochVolume[]) {
    if (typeof v !== 'object' || v === null) throw corrupt('a volume is not an object');
    const badName = badNameReason(v.name);
    if (badName) throw corrupt(`a volume: ${badName.replace(/^its name/, 'name')}`);
    if (names.has(v.name)) throw corrupt(`two volumes are named ${JSON.stringify(v.name)}`);
    names.add(v.name);
    if (typeof v.tree !== 'string' || !/^[0-9a-f]{64}$/.test(v.tree) || typeof v.root !== 'object' || v.root === null) throw corrupt(`volume ${JSON.stringify(v.name)} has no tree`);
  }
  return r;
}

export async function readEpoch(repo: Repository, id: string): Promise<Epoch> {
  return { id, ...parseEpochRecord(await repo.getObject('epochs', id), id) };
}

/** Every epoch in the store, oldest first. */
export async function listEpochs(repo: Repository): Promise<Epoch[]> {
  const out: Epoch[] = [];
  for await (const id of repo.backend.list('epochs')) out.push(await readEpoch(repo, id));
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.seq - b.seq));
}

function groupsOf(epochs: Epoch[]): string[] {
  return [...new Set(epochs.map((e) => e.group))].sort();
}

/** The epochs of the group given, or refuses when that group has none. */
export async function groupEpochs(repo: Repository, group: string | undefined): Promise<Epoch[]> {
  const all = await listEpochs(repo);
  if (group === undefined) return all;
  const mine = all.filter((e) => e.group === group);
  if (mine.length === 0) {
    const known = groupsOf(all);
    throw new EpochfsError('ENOEPOCH', `the store at ${repo.backend.location} has no epochs of group ${group}${known.length ? ` (it has ${known.join(', ')})` : ''}`);
  }
  return mine;
}

/**
 * The newest epoch of the scope. Without a group, a store holding several groups' epochs is
 * ambiguous — restoring another application's epoch would be wrong — unless the volume asked for
 * belongs to only one of them.
 */
function latestOf(all: Epoch[], scope: EpochScope, where: string): Epoch {
  let candidates = all;
  if (scope.group === undefined && groupsOf(all).length > 1) {
    const holding = scope.volume === undefined ? [] : groupsOf(all.filter((e) => e.volumes.some((v) => v.name === scope.volume)));
    if (holding.length !== 1) throw new UsageError(`the store at ${where} holds epochs of groups ${groupsOf(all).join(', ')}: choose one with --group`);
    candidates = all.filter((e) => e.group === holding[0]);
  }
  const last = candidates[candidates.length - 1];
  if (!last) throw new EpochfsError('ENOEPOCH', `the store at ${where} has no epochs yet`);
  return last;
}

/** An epoch by id, unique id prefix, or 'latest', within the scope's group when one is given. */
export async function findEpoch(repo: Repository, ref: string, scope: EpochScope = {}): Promise<Epoch> {
  const where = repo.backend.location;
  const all = await groupEpochs(repo, scope.group);
  if (ref === 'latest') return latestOf(all, scope, where);
  const matches = all.filter((e) => e.id.startsWith(ref));
  if (matches.length === 1) return matches[0];
  const of = scope.group === undefined ? '' : ` of group ${scope.group}`;
  if (matches.length === 0) throw new EpochfsError('ENOEPOCH', `no epoch ${ref}${of} in the store at ${where}`);
  throw new EpochfsError('EUSAGE', `epoch id prefix ${ref} is ambiguous (${matches.length} epochs${of})`);
}
