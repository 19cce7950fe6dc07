// epochfs-inspect journal: counts by operation, seq range, unclean stops; missing state exits 3.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Journal } from '../../src/journal/journal.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';

const TOOL = join(ROOT, 'dist', 'tools', 'inspect.js');
function inspect(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) =>
    execFile(process.execPath, [TOOL, ...args], (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
}

describe('epochfs-inspect journal', () => {
  it('summarizes a journal', async () => {
    const state = tempDir('inspect');
    const { journal } = await Journal.open(state);
    const t = 1n;
    journal.append({ op: 'mount', t, vol: 'v', backing: '/b', mountpoint: '/m', generation: 1 });
    journal.append({ op: 'write', t, path: '/f', offset: 0, data: Buffer.alloc(1000) });
    journal.append({ op: 'write', t, path: '/f', offset: 1000, data: Buffer.alloc(24) });
    journal.append({ op: 'unclean', t, generation: 2 });
    await journal.close(true);
    const r = await inspect(['journal', '--state', state, '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ firstSeq: 1, lastSeq: 4, records: 4, uncleanStops: 1, mounts: 1, daemon: null });
    expect(s.byOp.write).toEqual({ records: 2, payloadBytes: 1024 });
    const text = await inspect(['journal', '--state', state]);
    expect(text.stdout).toMatch(/records\s+4 \(seq 1 \.\. 4\)/);
  });

  it('--version prints the version epochfs prints', async () => {
    const r = await inspect(['--version']);
    expect([r.code, r.stdout.trim()]).toEqual([0, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version]);
  });

  it('exits 3 for a state dir without a journal', async () => {
    const r = await inspect(['journal', '--state', join(tempDir('inspect'), 'none')]);
    expect([r.code, r.stderr]).toEqual([3, expect.stringMatching(/no journal in state dir/)]);
  });
});
