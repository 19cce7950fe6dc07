// Option parsing shared by the commands: values are checked here so every command reports a bad
// option the same way (UsageError, exit 2).
import { createHash } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { isName, NAME_RULE } from '../util/shape.js';

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

/**
 * Node's timers cannot wait longer than 2^31-1 ms (~24.8 days): a longer delay fires at once, which
 * would take an epoch after every change. Longer durations are refused, not silently shortened.
 */
const MAX_DURATION_MS = 24 * 86_400_000;

/** A duration: 500ms, 30s, 5m, 1h, 2d (a bare number is seconds), at most 24 days; returns milliseconds. */
export function parseDuration(name: string) {
  return (value: string): number => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
    if (!m) throw new UsageError(`${name} must be a duration like 500ms, 30s, 5m, 1h or 2d, got '${value}'`);
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
    const ms = Number(m[1]) * unit;
    if (ms < 10) throw new UsageError(`${name} must be at least 10ms, got '${value}'`);
    if (ms > MAX_DURATION_MS) throw new UsageError(`${name} must be at most 24d (Node's timers cannot wait longer), got '${value}'`);
    return ms;
  };
}

/** A size: 4096, 64k, 512M, 2G, 1T (binary units; a bare number is bytes), at least `min` (1 MiB). */
export function parseSize(name: string, min = 1 << 20, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const m = /^(\d+(?:\.\d+)?)([kmgt]i?b?)?$/i.exec(value.trim());
    if (!m) throw new UsageError(`${name} must be a size like 512M, 2G or 1T, got '${value}'`);
    const unit = 1024 ** ' kmgt'.indexOf((m[2] ?? ' ')[0].toLowerCase());
    const bytes = Math.floor(Number(m[1]) * unit);
    if (bytes < min) throw new UsageError(`${name} must be at least ${sizeName(min)}, got '${value}'`);
    if (!Number.isSafeInteger(bytes) || bytes > max) throw new UsageError(`${name} must be at most ${sizeName(max)}, got '${value}'`);
    return bytes;
  };
}

/** 1M, 64K or 4096: how a limit is named in a usage error */
function sizeName(bytes: number): string {
  for (const [unit, n] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (bytes % n === 0) return `${bytes / n}${unit}`;
  return String(bytes);
}

export function parseGroupName(name: string) {
  return (value: string): string => {
    if (!isName(value)) throw new UsageError(`${name} must be ${NAME_RULE}, got '${value}'`);
    return value;
  };
}

/** A comma-separated list of volume names. */
export function parseNameList(name: string) {
  const one = parseGroupName(name);
  return (value: string): string[] => [...new Set(value.split(',').map((n) => one(n.trim())))];
}

/** The group a volume mounted without --group forms on its own: one per backing dir. */
export function soloGroupName(backing: string): string {
  const abs = resolve(backing);
  const id = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  return `${(basename(abs) || 'root').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40)}-${id}`;
}

/** The state dir a group gets when --state is not given. */
export function defaultStateDir(group: string, named: boolean): string {
  const root = process.env.EPOCHFS_STATE_ROOT ?? '/var/lib/epochfs';
  return join(root, named ? 'groups' : 'volumes', group);
}
