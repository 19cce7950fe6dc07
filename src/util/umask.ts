// Runs fn with umask 0, so that modes are exact. process.umask(mask) is the process's and cannot be
// called from a worker thread; there the daemon has already set it to 0 before starting workers.
import { isMainThread } from 'node:worker_threads';

export function withZeroUmask<T>(fn: () => T): T {
  if (!isMainThread) return fn();
  const old = process.umask(0);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

export async function withZeroUmaskAsync<T>(fn: () => Promise<T>): Promise<T> {
  if (!isMainThread) return fn();
  const old = process.umask(0);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}
