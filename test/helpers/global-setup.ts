// Before and after the whole run: nothing of ours stays mounted or running.
import { mkdirSync } from 'node:fs';
import { TEST_ROOT } from './env.js';
import { detachLoops, killDaemons, unmountAll } from './cleanup.js';

export function setup(): void {
  killDaemons();
  unmountAll();
  detachLoops();
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
}

export function teardown(): void {
  killDaemons();
  unmountAll();
  detachLoops();
}
