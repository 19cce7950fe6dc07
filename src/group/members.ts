// Who belongs to a group beyond its mounted volumes: the volumes named with --group-volumes (kept
// in the group's LevelDB until removed), and the remove marker that ends a volume's place in the
// group's epochs (docs/ARCHITECTURE.md, "Consistency groups": assembling, removal).
import type { Journal } from '../journal/journal.js';
import { nowNs } from '../util/clock.js';

const KEY = 'groupVolumes';

/** The volumes the group was told it has (--group-volumes), whether or not they joined yet. */
export async function loadGroupVolumes(journal: Journal | null): Promise<Set<string>> {
  const saved = await journal?.getState(KEY);
  return new Set(saved ? (JSON.parse(saved) as string[]) : []);
}

export async function saveGroupVolumes(journal: Journal | null, names: Set<string>): Promise<void> {
  await journal?.putState(KEY, JSON.stringify([...names].sort()));
}

/** Journals that `name` leaves the group's epochs, and forgets that the group expects it. */
export async function journalRemoval(journal: Journal, declared: Set<string>, name: string): Promise<number> {
  declared.delete(name);
  await saveGroupVolumes(journal, declared);
  return journal.append({ op: 'remove', t: nowNs(), vol: name });
}
