// Shapes of values that come from outside the process (journal records read back from disk,
// control-socket requests, command-line options): each decoder checks what it parsed with these
// before anything uses it, so a bad value is a typed error at the boundary, not a TypeError later.

/** A group or volume name: 1-64 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NAME_RULE = "1-64 letters, digits, '.', '_' or '-'";

/** Linux's PATH_MAX: no path the kernel accepts is longer (a string has at most one char per byte). */
const PATH_MAX = 4096;

export type Plain = { [key: string]: unknown };

export function isName(v: unknown): v is string {
  return typeof v === 'string' && NAME.test(v);
}

/**
 * An integer in 0..max (default: what a u64 holds). Not only safe integers: a file offset or device
 * number past 2^53 reaches us as the nearest double and is written, and read back, as that.
 */
export function isUint(v: unknown, max = 2 ** 64 - 2 ** 11 /* the largest double below 2^64 */): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** A JSON object (not null, not an array). */
export function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Text the kernel could take as a name or link target: not empty, no NUL, at most PATH_MAX. */
export function isText(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= PATH_MAX && !v.includes('\0');
}

/** An absolute host path (a backing dir, a mount point). */
export function isAbsolutePath(v: unknown): v is string {
  return isText(v) && v.startsWith('/');
}
