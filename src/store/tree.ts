// Tree blobs: one per directory, entries sorted by name (docs/ARCHITECTURE.md, "Tree blob").
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

export function decodeTree(buf: Buffer): TreeEntry[] {
  return (JSON.parse(buf.toString()) as { entries: TreeEntry[] }).entries;
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
