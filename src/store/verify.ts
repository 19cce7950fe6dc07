// Checking a whole store: every object's bytes against its name, every blob authenticated and
// matching its id, every index entry pointing into a pack that holds it, and every tree and data
// blob that an epoch references present. Problems are collected, each naming its object.
import { EpochfsError } from '../util/errors.js';
import { BlobStore } from './blobs.js';
import { hash256 } from './crypto.js';
import { listEpochs } from './epochs.js';
import { readPackHeader, type PackedBlob } from './pack.js';
import type { Repository } from './repository.js';
import { decodeTree } from './tree.js';

export interface VerifyReport {
  packs: number;
  blobs: number;
  indexes: number;
  epochs: number;
  problems: string[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function checkPacks(repo: Repository, report: VerifyReport): Promise<Map<string, PackedBlob[]>> {
  const packs = new Map<string, PackedBlob[]>();
  for await (const name of repo.backend.list('packs')) {
    report.packs++;
    try {
      const bytes = await repo.backend.get('packs', name);
      if (hash256(bytes).toString('hex') !== name) throw new Error(`packs/${name} is damaged (its content does not match its name)`);
      const blobs = readPackHeader(repo, name, bytes);
      for (const b of blobs) {
        repo.openBlobChecked(b.id, bytes.subarray(b.offset, b.offset + b.length), `packs/${name}`);
        report.blobs++;
      }
      packs.set(name, blobs);
    } catch (err) {
      report.problems.push(message(err));
    }
  }
  return packs;
}

async function checkIndexes(repo: Repository, packs: Map<string, PackedBlob[]>, report: VerifyReport): Promise<BlobStore | undefined> {
  for await (const name of repo.backend.list('index')) {
    report.indexes++;
    try {
      const idx = JSON.parse((await repo.getObject('index', name)).toString()) as { packs: { id: string; blobs: PackedBlob[] }[] };
      for (const p of idx.packs) {
        const held = packs.get(p.id);
        if (!held) {
          report.problems.push(`index/${name} refers to packs/${p.id}, which is missing or damaged`);
          continue;
        }
        const ids = new Set(held.map((b) => `${b.id}@${b.offset}+${b.length}`));
        for (const b of p.blobs) if (!ids.has(`${b.id}@${b.offset}+${b.length}`)) report.problems.push(`index/${name}: blob ${b.id} is not where it says in packs/${p.id}`);
      }
    } catch (err) {
      report.problems.push(message(err));
    }
  }
  try {
    return await BlobStore.load(repo);
  } catch {
    return undefined; // already reported above
  }
}

async function checkReferences(repo: Repository, blobs: BlobStore, report: VerifyReport): Promise<void> {
  const seen = new Set<string>();
  const walk = async (tree: string, where: string): Promise<void> => {
    if (seen.has(tree)) return;
    seen.add(tree);
    if (!blobs.has(tree)) return void report.problems.push(`${where}: tree ${tree} is missing`);
    let entries;
    try {
      entries = decodeTree(await blobs.get(tree));
    } catch (err) {
      return void report.problems.push(`${where}: ${message(err)}`);
    }
    for (const e of entries) {
      if (e.subtree) await walk(e.subtree, `${where}/${e.name}`);
      for (const id of e.content ?? []) if (id !== null && !blobs.has(id)) report.problems.push(`${where}/${e.name}: data blob ${id} is missing`);
    }
  };
  let epochs;
  try {
    epochs = await listEpochs(repo);
  } catch (err) {
    return void report.problems.push(message(err));
  }
  for (const epoch of epochs) {
    report.epochs++;
    for (const v of epoch.volumes) await walk(v.tree, `epochs/${epoch.id} ${v.name}`);
  }
}

export async function verifyStore(repo: Repository): Promise<VerifyReport> {
  const report: VerifyReport = { packs: 0, blobs: 0, indexes: 0, epochs: 0, problems: [] };
  for (const name of await repo.damagedKeys()) report.problems.push(`keys/${name} is damaged (its content does not match its name)`);
  const packs = await checkPacks(repo, report);
  const blobs = await checkIndexes(repo, packs, report);
  if (blobs) await checkReferences(repo, blobs, report);
  return report;
}

export function failIfProblems(report: VerifyReport): void {
  if (report.problems.length) throw new EpochfsError('EOBJECTCORRUPT', `the store has ${report.problems.length} problem(s)`);
}
