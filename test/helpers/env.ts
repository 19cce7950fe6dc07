// Where tests keep their files, daemons' run dir and state: all under one root, so a run can clean
// up whatever an earlier (killed) run left mounted.
import { chmodSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';

export const TEST_ROOT = process.env.EPOCHFS_TEST_ROOT ?? '/tmp/epochfs-test';
export const RUN_DIR = join(TEST_ROOT, 'run');
export const TEST_ENV = { EPOCHFS_RUN_DIR: RUN_DIR, EPOCHFS_STATE_ROOT: join(TEST_ROOT, 'state-root') };

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(TEST_ROOT, `${prefix}-`));
  chmodSync(dir, 0o755); // tests also run callers as other uids
  return dir;
}
