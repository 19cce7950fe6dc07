// File names are bytes. Paths travel through epochfs as strings in which valid UTF-8 is itself and
// every other byte b is the lone surrogate U+DC00 + b (native/bytename.h is the one codec; see
// docs/ARCHITECTURE.md, "Names are bytes"). Node's fs takes such a string only as the Buffer of its
// bytes: every path handed to fs goes through fsPath, every name read from fs through these readers.
import { readdirSync, readlinkSync } from 'node:fs';
import { check, sys } from './sys.js';

const SURROGATE = /[\uD800-\uDFFF]/;

/** What Node's fs needs for `path`: the string itself, or the bytes it stands for. */
export function fsPath(path: string): string | Buffer {
  return SURROGATE.test(path) ? check(sys.encodeName(path), 'encode name', JSON.stringify(path)) : path;
}

/** The path string for bytes read from the file system. */
export function nameOf(bytes: Buffer): string {
  return sys.decodeName(bytes); // the codec checks for plain UTF-8 itself
}

/** The names in a directory, byte-exact. */
export function readdirNames(dir: string): string[] {
  return readdirSync(fsPath(dir), { encoding: 'buffer' }).map(nameOf);
}

/** A symlink's target, byte-exact. */
export function readlinkName(path: string): string {
  return nameOf(readlinkSync(fsPath(path), { encoding: 'buffer' }));
}
