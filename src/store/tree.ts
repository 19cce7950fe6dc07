// Tree blobs: one per directory, entries sorted by name (docs/ARCHITECTURE.md, "Tree blob").
import { EpochfsError } from '../util/errors.js';
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chr' | 'blk' | 'socket';

/** Metadata every node has (also the volume root, kept in the epoch record). */
export interface NodeMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: string;
  /** absent for directories (see snapshot.ts) */
  atime?: string;
  xattrs?: { [name: string]: string };
}

export interface TreeEntry extends NodeMeta {
  name: string;
  type: EntryType;
  size?: number;
  content?: (string | null)[];
  subtree?: string;
  target?: string;
  rdev?: number;
  link?: number;
}

export function encodeTree(entries: TreeEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Buffer.from(JSON.stringify({ entries: sorted }));
}

// issue 8: hostile store — a tree is data from the store, and a restore running as root writes
// where its names say: every entry is checked before anything of its directory is created.
const ENTRY_TYPES: ReadonlySet<string> = new Set(['file', 'dir', 'symlink', 'fifo', 'chr', 'blk', 'socket']);
const NS_TIME = /^-?[0-9]{1,20}$/;
const BLOB_ID = /^[0-9a-f]{64}$/;
/** uid_t and gid_t are 32 bits */
const MAX_ID = 0xffffffff;

/** Why `name` cannot be one component of a path restored below a directory, or undefined if it can. */
export function badNameReason(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'its name is not a string';
  if (name === '' || name === '.' || name === '..') return `its name ${JSON.stringify(name)} is not a file name`;
  if (name.includes('/') || name.includes('\0')) return `its name ${JSON.stringify(name)} holds '/' or NUL`;
  return undefined;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Why a tree entry is malformed, or undefined when it is sound. */
function badEntryReason(e: TreeEntry): string | undefined {
  if (typeof e.type !== 'string' || !ENTRY_TYPES.has(e.type)) return `its type ${JSON.stringify(e.type)} is unknown`;
  if (!isCount(e.mode) || e.mode > 0o177777 || !isCount(e.uid) || !isCount(e.gid) || e.uid > MAX_ID || e.gid > MAX_ID) return 'its mode or owner is not a number';
  if (typeof e.mtime !== 'string' || !NS_TIME.test(e.mtime) || (e.atime !== undefined && (typeof e.atime !== 'string' || !NS_TIME.test(e.atime)))) return 'its times are not ns numbers';
  if (e.xattrs !== undefined && (typeof e.xattrs !== 'object' || e.xattrs === null || Object.values(e.xattrs).some((v) => typeof v !== 'string'))) return 'its xattrs are malformed';
  if (e.link !== undefined && (!isCount(e.link) || e.type === 'dir')) return 'its hard-link group is malformed';
  switch (e.type) {
    case 'dir':
      return typeof e.subtree === 'string' && BLOB_ID.test(e.subtree) ? undefined : 'it has no subtree id';
    case 'file':
      if (!isCount(e.size ?? 0)) return 'its size is not a number';
      if (e.content !== undefined && (!Array.isArray(e.content) || e.content.some((id) => id !== null && (typeof id !== 'string' || !BLOB_ID.test(id))))) return 'its content is malformed';
      return undefined;
    case 'symlink':
      return typeof e.target === 'string' && !e.target.includes('\0') ? undefined : 'it has no symlink target';
    default:
      return e.rdev === undefined || isCount(e.rdev) ? undefined : 'its rdev is not a number';
  }
}

/**
 * The entries of a tree blob, checked: each a sound entry whose name is one path component, no
 * two of the same name. `where` names the tree in the error (EOBJECTCORRUPT, exit 5).
 */
export function decodeTree(buf: Buffer, where = 'a tree'): TreeEntry[] {
  const corrupt = (reason: string) => new EpochfsError('EOBJECTCORRUPT', `${where}: ${reason}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString());
  } catch {
    throw corrupt('is not valid JSON');
  }
  const entries = (parsed as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries)) throw corrupt('has no entry list');
  const names = new Set<string>();
  entries.forEach((e: TreeEntry, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw corrupt(`entry ${i} is not an object`);
    const badName = badNameReason(e.name);
    if (badName) throw corrupt(`entry ${i}: ${badName}`);
    const badEntry = badEntryReason(e);
    if (badEntry) throw corrupt(`entry ${JSON.stringify(e.name)}: ${badEntry}`);
    if (names.has(e.name)) throw corrupt(`entry ${JSON.stringify(e.name)}: a second entry of that name`);
    names.add(e.name);
  });
  return entries as TreeEntry[];
}

export function typeOfMode(mode: number): EntryType {
  switch (mode & 0o170000) {
    case 0o040000: return 'dir';
    case 0o100000: return 'file';
    case 0o120000: return 'symlink';
    case 0o010000: return 'fifo';
    case 0o020000: return 'chr';
    case 0o060000: return 'blk';
    default: return 'socket';
  }
}
