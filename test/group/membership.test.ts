// Who is in a group's epochs: a volume that left keeps its last state in every later epoch (also
// across daemon restarts) until it is removed; a group still being assembled marks its epochs
// partial; with several groups in one store, `latest` means the latest of the group asked for.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalBackend } from '../../src/store/backends/local.js';
import { listEpochs } from '../../src/store/epochs.js';
import { Repository } from '../../src/store/repository.js';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { makeGroup, mountInGroup, umountInGroup, umountTracked, type TestGroup } from '../helpers/group.js';

const PASS = 'membership-test';
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
afterEach(() => umountTracked(env));

interface EpochLine {
  id: string;
  group: string;
  volumes: string[];
  detached?: string[];
  partial?: boolean;
  missing?: string[];
}

async function epochsOf(store: string, group?: string): Promise<EpochLine[]> {
  const args = ['epochs', '--store', store, '--json', ...(group ? ['--group', group] : [])];
  return (await epochfsOk(args, { env })).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EpochLine);
}

/** The tree id volume `vol` has in each epoch of `group` that holds it, oldest first. */
async function treesOf(store: string, group: string, vol: string): Promise<string[]> {
  const repo = await Repository.open(new LocalBackend(store), Buffer.from(PASS));
  return (await listEpochs(repo)).filter((e) => e.group === group).flatMap((e) => e.volumes.filter((v) => v.name === vol).map((v) => v.tree));
}

/** Restores `args` (an --epoch and more) into a fresh dir and returns, per volume dir, its file `f`. */
async function restored(g: TestGroup, label: string, args: string[]): Promise<{ [vol: string]: string }> {
  const to = join(g.dir, `restore-${label}`);
  await epochfsOk(['restore', '--store', g.store, '--to', to, ...args], { env });
  return Object.fromEntries(readdirSync(to).sort().map((v) => [v, readFileSync(join(to, v, 'f'), 'utf8')]));
}

/** Mounts va and vb into `group`, writes f on both, unmounts va, writes vb again, unmounts vb. */
async function bothThenLeave(g: TestGroup, group: string, [a, b1, b2]: [string, string, string]): Promise<void> {
  const [va, vb] = g.vols;
  await mountInGroup(g, group, va, env);
  await mountInGroup(g, group, vb, env);
  writeFileSync(join(va.mnt, 'f'), a);
  writeFileSync(join(vb.mnt, 'f'), b1);
  await umountInGroup(va, env); // its last state goes into an epoch as it leaves
  writeFileSync(join(vb.mnt, 'f'), b2);
  await umountInGroup(vb, env); // the daemon stops
}

const removeVolume = (g: TestGroup, group: string, vol: string) =>
  epochfs(['group', 'remove-volume', '--group', group, '--volume', vol, '--store', g.store, '--state', g.state], { env });

describe('group membership of epochs', () => {
  it('keeps a volume that left at its last state in the latest epoch, across a daemon restart, until it is removed', async () => {
    const g = await makeGroup('members', ['va', 'vb'], env);
    const vb = g.vols[1];
    await bothThenLeave(g, 'g', ['va-last', 'vb-1', 'vb-2']);
    expect(await restored(g, 'after-stop', ['--epoch', 'latest'])).toEqual({ va: 'va-last', vb: 'vb-2' });
    const [beforeLeft, latest] = (await epochsOf(g.store)).slice(-2);
    expect([latest.volumes, latest.detached]).toEqual([['va', 'vb'], ['va']]);
    expect(beforeLeft.volumes).toEqual(['va', 'vb']);

    // a new daemon for the group: va is still carried
    await mountInGroup(g, 'g', vb, env);
    writeFileSync(join(vb.mnt, 'f'), 'vb-3');
    const cp = JSON.parse(await epochfsOk(['checkpoint', '--group', 'g', '--json'], { env })) as { epoch: string; volumes: string[] };
    expect(cp.volumes).toEqual(['va', 'vb']);
    expect(await restored(g, 'restarted', ['--epoch', 'latest', '--group', 'g'])).toEqual({ va: 'va-last', vb: 'vb-3' });
    // from the epoch it left in on, va is the same tree (copy-on-write: nothing of it stored again)
    const vaTrees = await treesOf(g.store, 'g', 'va');
    expect(new Set(vaTrees.slice(vaTrees.indexOf(vaTrees.at(-1)!))).size).toBe(1);
    expect(vaTrees.length - vaTrees.indexOf(vaTrees.at(-1)!)).toBeGreaterThanOrEqual(3);

    // removal: refused while mounted, unknown names are not found, then gone from the next epoch
    const busy = await removeVolume(g, 'g', 'vb');
    expect([busy.code, busy.stderr.trim().split('\n').length]).toEqual([4, 1]);
    const unknown = await removeVolume(g, 'g', 'vz');
    expect([unknown.code, unknown.stderr]).toEqual([3, expect.stringMatching(/^epochfs: .*vz.*\n$/)]);
    expect((await removeVolume(g, 'g', 'va')).code).toBe(0);
    const afterRemoval = (await epochsOf(g.store, 'g')).at(-1)!;
    expect([afterRemoval.volumes, afterRemoval.detached ?? []]).toEqual([['vb'], []]);
    expect(await restored(g, 'removed', ['--epoch', 'latest', '--group', 'g'])).toEqual({ vb: 'vb-3' });
    await umountInGroup(vb, env);
    expect((await epochsOf(g.store, 'g')).at(-1)!.volumes).toEqual(['vb']);
  });

  it('removes a volume of a stopped group from the next epoch it takes', async () => {
    const g = await makeGroup('members-stopped', ['va', 'vb'], env);
    await bothThenLeave(g, 'gs', ['a', 'b', 'b2']);
    const r = await removeVolume(g, 'gs', 'va');
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/va/)]);
    await mountInGroup(g, 'gs', g.vols[1], env);
    expect((await epochsOf(g.store, 'gs')).at(-1)!.volumes).toEqual(['vb']);
    expect(await restored(g, 'stopped-removal', ['--epoch', 'latest', '--group', 'gs'])).toEqual({ vb: 'b2' });
  });

  it('with two groups in one store, latest needs --group, means that group\'s latest, and --volume narrows within it', async () => {
    const g1 = await makeGroup('two-groups', ['a1', 'a2'], env);
    const g2 = await makeGroup('two-groups-b', ['b1'], env, g1.store);
    for (const v of g1.vols) await mountInGroup(g1, 'app1', v, env);
    for (const v of g1.vols) writeFileSync(join(v.mnt, 'f'), `${v.name}-data`);
    await epochfsOk(['checkpoint', '--group', 'app1'], { env });
    await mountInGroup(g2, 'app2', g2.vols[0], env);
    writeFileSync(join(g2.vols[0].mnt, 'f'), 'b1-data');
    await epochfsOk(['checkpoint', g2.vols[0].mnt], { env }); // app2's epoch is the store's newest

    const ambiguous = await epochfs(['restore', '--store', g1.store, '--epoch', 'latest', '--to', join(g1.dir, 'x')], { env });
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/^epochfs: .*--group.*\n$/);
    expect(ambiguous.stderr).toContain('app1');
    expect(ambiguous.stderr).toContain('app2');
    expect(await restored(g1, 'app1', ['--epoch', 'latest', '--group', 'app1'])).toEqual({ a1: 'a1-data', a2: 'a2-data' });
    expect(await restored(g1, 'app1-a2', ['--epoch', 'latest', '--group', 'app1', '--volume', 'a2'])).toEqual({ a2: 'a2-data' });
    expect(await restored(g1, 'b1-only', ['--epoch', 'latest', '--volume', 'b1'])).toEqual({ b1: 'b1-data' });
    const noSuch = await epochfs(['restore', '--store', g1.store, '--epoch', 'latest', '--group', 'app1', '--volume', 'b1', '--to', join(g1.dir, 'y')], { env });
    expect(noSuch.code).toBe(3);

    const app2 = await epochsOf(g1.store, 'app2');
    expect(app2.length).toBeGreaterThan(0);
    expect(app2.every((e) => e.group === 'app2')).toBe(true);
    const all = await epochsOf(g1.store);
    expect(all.length).toBe(app2.length + (await epochsOf(g1.store, 'app1')).length);
    // an id prefix resolves within the group given
    const foreign = await epochfs(['restore', '--store', g1.store, '--epoch', app2[0].id.slice(0, 12), '--group', 'app1', '--to', join(g1.dir, 'z')], { env });
    expect(foreign.code).toBe(3);
    const table = await epochfsOk(['epochs', '--store', g1.store, '--group', 'app1'], { env });
    expect(table).toContain('app1');
    expect(table).not.toContain('app2');
    const v = await epochfs(['verify', '--store', g1.store, '--group', 'app1', '--json'], { env });
    expect([v.code, JSON.parse(v.stdout)]).toEqual([0, expect.objectContaining({ ok: true, group: 'app1', checked: expect.objectContaining({ epochs: (await epochsOf(g1.store, 'app1')).length }) })]);
  });

  it('marks the first base epoch of a group partial while a volume it names has yet to join', async () => {
    const g = await makeGroup('assembling', ['wal', 'data'], env);
    const [wal, data] = g.vols;
    await mountInGroup(g, 'pg', wal, env, ['--group-volumes', 'wal,data']);
    writeFileSync(join(wal.mnt, 'f'), 'w');
    await epochfsOk(['checkpoint', '--group', 'pg'], { env });
    const early = await epochsOf(g.store, 'pg');
    expect(early.map((e) => [e.volumes, e.partial, e.missing])).toEqual(early.map(() => [['wal'], true, ['data']]));
    const table = await epochfsOk(['epochs', '--store', g.store, '--group', 'pg'], { env });
    expect(table).toMatch(/partial \(no data yet\)/);
    await mountInGroup(g, 'pg', data, env);
    const joined = (await epochsOf(g.store, 'pg')).at(-1)!;
    expect([joined.volumes, joined.partial ?? false, joined.missing ?? []]).toEqual([['data', 'wal'], false, []]);
    await umountInGroup(wal, env);
    await umountInGroup(data, env);
    const last = (await epochsOf(g.store, 'pg')).at(-1)!;
    expect(last.partial ?? false).toBe(false);
  });
});
