// Checking a whole store: every object's bytes against its name, every blob authenticated and
// matching its id, every index entry pointing into a pack that holds it, and every tree and data
// blob that an epoch references present. Problems are collected, each naming its object.
import { EpochfsError } from '../util/errors.js';
import { counted } from '../util/format.js';
import { BlobStore, parseIndex } from './blobs.js';
import { hash256 } from './crypto.js';
import { readEpoch, type Epoch } from './epochs.js';
import { readPackHeader, type PackedBlob } from './pack.js';
import { getBounded, type Repository } from './repository.js';
import { decodeTree } from './tree.js';

/** One damaged or dangling object: its kind and name in the store, and what is wrong with it. */
export interface Damage {
  kind: 'keys' | 'packs' | 'index' | 'epochs';
  name: string;
  reason: string;
}

export interface VerifyReport {
  /** the group whose epochs' references were checked (every group's when null) */
  group: string | null;
  packs: number;
  blobs: number;
  indexes: number;
  epochs: number;
  damage: Damage[];
}

/** The error's message without the object's own name in front (the damage entry names it). */
function reasonOf(err: unknown, kind: string, name: string): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.startsWith(`${kind}/${name} `) ? text.slice(kind.length + name.length + 2) : text;
}

export function describeDamage(d: Damage): string {
  return `${d.kind}/${d.name}: ${d.reason}`;
}

async function names(repo: Repository, kind: 'epochs' | 'index'): Promise<string[]> {
  const out: string[] = [];
  for await (const name of repo.backend.list(kind)) out.push(name);
  return out;
}

async function checkPacks(repo: Repository, report: VerifyReport): Promise<Map<string, PackedBlob[]>> {
  const packs = new Map<string, PackedBlob[]>();
  for await (const name of repo.backend.list('packs')) {
    report.packs++;
    try {
      const bytes = await getBounded(repo.backend, 'packs', name, repo.maxPackSize);
      if (hash256(bytes).toString('hex') !== name) throw new Error(`packs/${name} is damaged (its content does not match its name)`);
      const blobs = readPackHeader(repo, name, bytes);
      for (const b of blobs) {
        repo.openBlobChecked(b.id, bytes.subarray(b.offset, b.offset + b.length), `packs/${name}`);
        report.blobs++;
      }
      packs.set(name, blobs);
    } catch (err) {
      report.damage.push({ kind: 'packs', name, reason: reasonOf(err, 'packs', name) });
    }
  }
  return packs;
}

async function checkIndexes(repo: Repository, names: string[], packs: Map<string, PackedBlob[]>, report: VerifyReport): Promise<BlobStore | undefined> {
  for (const name of names) {
    report.indexes++;
    try {
      const idx = parseIndex(repo, await repo.getObject('index', name), name);
      for (const p of idx.packs) {
        const held = packs.get(p.id);
        if (!held) {
          report.damage.push({ kind: 'index', name, reason: `refers to packs/${p.id}, which is missing or damaged` });
          continue;
        }
        const ids = new Set(held.map((b) => `${b.id}@${b.offset}+${b.length}`));
        for (const b of p.blobs) if (!ids.has(`${b.id}@${b.offset}+${b.length}`)) report.damage.push({ kind: 'index', name, reason: `blob ${b.id} is not where it says in packs/${p.id}` });
      }
    } catch (err) {
      report.damage.push({ kind: 'index', name, reason: reasonOf(err, 'index', name) });
    }
  }
  try {
    return await BlobStore.load(repo);
  } catch {
    return undefined; // already reported above
  }
}

/** Every epoch record that opens (each damaged one is reported), of `group` if given. */
async function checkEpochRecords(repo: Repository, ids: string[], group: string | null, report: VerifyReport): Promise<Epoch[]> {
  const out: Epoch[] = [];
  for (const id of ids) {
    try {
      const epoch = await readEpoch(repo, id);
      if (group === null || epoch.group === group) out.push(epoch);
    } catch (err) {
      report.damage.push({ kind: 'epochs', name: id, reason: reasonOf(err, 'epochs', id) });
    }
  }
  return out;
}

async function checkReferences(blobs: BlobStore, epochs: Epoch[], report: VerifyReport): Promise<void> {
  const seen = new Set<string>();
  const walk = async (tree: string, epoch: string, where: string): Promise<void> => {
    if (seen.has(tree)) return;
    seen.add(tree);
    const dangling = (path: string, reason: string) => report.damage.push({ kind: 'epochs', name: epoch, reason: `${path}: ${reason}` });
    if (!blobs.has(tree)) return void dangling(where, `tree ${tree} is missing`);
    let entries;
    try {
      entries = decodeTree(await blobs.get(tree), `tree ${tree}`);
    } catch (err) {
      return void dangling(where, (err as Error).message);
    }
    for (const e of entries) {
      if (e.subtree) await walk(e.subtree, epoch, `${where}/${e.name}`);
      for (const id of e.content ?? []) if (id !== null && !blobs.has(id)) dangling(`${where}/${e.name}`, `data blob ${id} is missing`);
    }
  };
  for (const epoch of epochs) {
    report.epochs++;
    for (const v of epoch.volumes) await walk(v.tree, epoch.id, `volume ${v.name}`);
  }
}

/**
 * Every object of the store authenticated and every index entry checked; the references (trees,
 * data blobs) of every epoch, or of the epochs of `group` only.
 */
export async function verifyStore(repo: Repository, group: string | null = null): Promise<VerifyReport> {
  const report: VerifyReport = { group, packs: 0, blobs: 0, indexes: 0, epochs: 0, damage: [] };
  for (const name of await repo.damagedKeys()) report.damage.push({ kind: 'keys', name, reason: 'is damaged (its content does not match its name)' });
  // A shipper may be storing an epoch meanwhile: packs, then index, then the epoch record. Listing
  // in the reverse order sees everything that what it lists refers to.
  const epochIds = await names(repo, 'epochs');
  const indexNames = await names(repo, 'index');
  const packs = await checkPacks(repo, report);
  const blobs = await checkIndexes(repo, indexNames, packs, report);
  const epochs = await checkEpochRecords(repo, epochIds, group, report);
  if (group !== null && epochs.length === 0) throw new EpochfsError('ENOEPOCH', `the store at ${repo.backend.location} has no epochs of group ${group}`);
  if (blobs) await checkReferences(blobs, epochs, report);
  return report;
}

export function failIfDamaged(report: VerifyReport): void {
  if (report.damage.length) throw new EpochfsError('EOBJECTCORRUPT', `the store has ${counted(report.damage.length, 'problem')}`);
}
