// The negative errno FUSE expects for a failed call.
import { errnoOf } from '../util/errors.js';

export const ENOENT = -2;
export const EIO = -5;
export const EBADF = -9;
export const EACCES = -13;
export const EEXIST = -17;
export const EINVAL = -22;
export const ENOSPC = -28;
export const ERANGE = -34;
export const ENOSYS = -38;
export const ENODATA = -61;
export const EOPNOTSUPP = -95;

export function fuseErrno(err: unknown): number {
  const n = errnoOf(err);
  return n < 0 ? n : -n;
}
