// The control socket: a request that fails in the daemon is answered with its one-line message and
// error code (a system error as `<path>: <reason>`), which the asking command prints as is.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { askDaemon, serveControl } from '../../src/group/control.js';
import { tempDir } from '../helpers/env.js';

describe('control socket', () => {
  it('answers a failed request with one line and its code', async () => {
    const dir = tempDir('control');
    const socket = join(dir, 'daemon.sock');
    const server = serveControl(socket, async () => {
      readFileSync(join(dir, 'missing', 'file')); // fails with ENOENT in the "daemon"
      return { ok: true };
    });
    try {
      const reply = await askDaemon(socket, { op: 'status' }, 5_000);
      expect(reply).toEqual({ ok: false, error: `${join(dir, 'missing', 'file')}: no such file or directory`, code: 'EPATHNOTFOUND' });
    } finally {
      server.close();
    }
  });
});
