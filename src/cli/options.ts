// Option parsing shared by the commands: values are checked here so every command reports a bad
// option the same way (UsageError, exit 2).
import { createHash } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';

export function parseNonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a non-negative number, got '${value}'`);
    return n;
  };
}

export function parseSeq(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${name} must be a sequence number, got '${value}'`);
    return n;
  };
}

/** The state dir a volume gets when --state is not given: one per backing dir. */
export function defaultStateDir(backing: string): string {
  const abs = resolve(backing);
  const id = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  const root = process.env.EPOCHFS_STATE_ROOT ?? '/var/lib/epochfs/volumes';
  return join(root, `${basename(abs) || 'root'}-${id}`);
}
