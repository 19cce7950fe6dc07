// issue 8, must-show (d): 20 rounds of kill -9 of a group daemon that ships to a store with an
// epoch every 200 ms, at seeded random moments, under a mixed workload on two volumes (creates,
// appends, overwrites, truncates, renames, links, unlinks, xattrs, fsyncs: test/helpers/workload.ts)
// and an fsync writer (test/helpers/fsync-writer.mjs, which prints name + sha256 after each fsync).
// After every restart each acknowledged fsync is there with its content. Up to twice per round the
// writers are quiesced (the workload batch ends, the fsync writer is SIGSTOPped until every thread
// is stopped, libfuse's hidden files are gone), a checkpoint is taken and the live trees are
// snapshotted: at the end that epoch must restore to exactly those trees. Every epoch in the store
// verifies and restores (restoreTree, what `epochfs restore` runs; `latest` through the CLI), and
// every epoch holds both volumes. The seed (EPOCHFS_KILL_SEED replays a schedule; timing still
// varies) and each round's plan are printed.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { daemonPid, killGroupDaemon, makeGroup, mountInGroup, umountInGroup, umountTracked, type TestGroup } from '../helpers/group.js';
import { diffTrees, snapshot, type TreeState } from '../helpers/tree.js';
import { prng, runWorkload } from '../helpers/workload.js';
import { LocalBackend } from '../../src/store/backends/local.js';
import { BlobStore } from '../../src/store/blobs.js';
import { listEpochs } from '../../src/store/epochs.js';
import { Repository } from '../../src/store/repository.js';
import { restoreTree } from '../../src/store/restore.js';
import { isRunning } from '../../src/fs/registry.js';

const ROUNDS = Number(process.env.EPOCHFS_KILL_ROUNDS ?? 20);
const SEED = Number(process.env.EPOCHFS_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PASS = 'kill-rounds-test';
const GROUP = 'killrounds';
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };
const SYNCED_MAX_BYTES = 30_000; // the tree stays small: every mount copies it, every epoch is restored
const WRITER = join(__dirname, '..', 'helpers', 'fsync-writer.mjs');
const say = (msg: string) => console.log(`kill-rounds [seed ${SEED}] ${msg}`);

let g: TestGroup | undefined;
let writer: Writer | undefined;
let scratch: string | undefined;
afterEach(async () => {
  if (scratch?.startsWith('/dev/shm/')) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
  writer?.kill();
  writer = undefined;
  await umountTracked(env);
  if (g) stopDaemon(g); // a daemon a failed test left behind (by its pid)
  g = undefined;
});

/** The fsync writer as a child process: every line it printed is an acknowledged fsync. */
class Writer {
  private readonly child: ChildProcess;
  private buffered = '';
  readonly acknowledged: string[] = [];
  readonly exited: Promise<void>;

  constructor(root: string, tag: string) {
    this.child = spawn(process.execPath, [WRITER, root, tag, String(SYNCED_MAX_BYTES)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      const lines = (this.buffered + d.toString()).split('\n');
      this.buffered = lines.pop()!;
      this.acknowledged.push(...lines.filter(Boolean));
    });
    this.exited = new Promise((res) => this.child.on('exit', () => res()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** SIGSTOP, then wait until every thread is stopped: none is inside a request to the mount. */
  async pause(): Promise<void> {
    process.kill(this.pid, 'SIGSTOP');
    await until('the writer to stop', () => threadStates(this.pid).every((s) => s === 'T' || s === 't'));
  }

  resume(): void {
    process.kill(this.pid, 'SIGCONT');
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  });
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
  }
}

/** Cleanup after a failure: the daemon by its pid, then whatever is still mounted. */
function stopDaemon(group: TestGroup): void {
  const pid = daemonPid(group);
  if (pid !== undefined && isRunning(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(group.dir)) process.kill(pid, 'SIGKILL');
  for (const v of group.vols) {
    try {
      execFileSync('umount', ['-l', v.mnt], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
  }
}

/** Files libfuse hid (unlinked while open): their unlink follows the last close asynchronously. */
function hiddenFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((p) => p.split('/').pop()!.startsWith('.fuse_hidden'));
}

/** A tmpfs dir for restores if /dev/shm keeps user xattrs (Linux 6.6 and later), else `fallback`. */
function scratchDir(fallback: string): string {
  let dir: string | undefined;
  try {
    dir = mkdtempSync('/dev/shm/epochfs-kill-rounds-');
    writeFileSync(join(dir, 'probe'), '');
    execFileSync('setfattr', ['-n', 'user.probe', '-v', '1', join(dir, 'probe')], { stdio: 'ignore' });
    rmSync(join(dir, 'probe'));
    return dir;
  } catch {
    if (dir) rmSync(dir, { recursive: true, force: true });
    return fallback;
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

interface Checkpoint {
  epoch: string;
  seq: number;
  volumes: string[];
}

/** `checkpoint --group --json`, waiting out a resync (a degraded group takes no epochs: EDEGRADED). */
async function checkpoint(): Promise<Checkpoint> {
  for (const t0 = Date.now(); ; await new Promise((r) => setTimeout(r, 500))) {
    const r = await epochfs(['checkpoint', '--group', GROUP, '--json'], { env });
    const reply = JSON.parse(r.stdout) as Checkpoint & { error?: { code: string; message: string } };
    if (!reply.error) return reply;
    if (reply.error.code !== 'EDEGRADED' || Date.now() - t0 > 60_000) throw new Error(`checkpoint failed: ${reply.error.message}`);
  }
}

interface ExactCheck {
  round: number;
  epoch: string;
  seq: number;
  trees: { [vol: string]: TreeState };
}

describe('kill -9 of a shipping group daemon', () => {
  it(`${ROUNDS} rounds at random moments: acknowledged fsyncs survive, every epoch verifies, restores, and is exact where checked`, async () => {
    const t0 = Date.now();
    say(`starting (EPOCHFS_KILL_SEED=${SEED} replays this schedule)`);
    const rnd = prng(SEED);
    const int = (n: number) => Math.floor(rnd() * n);
    g = await makeGroup('kill-rounds', 2, env);
    const group = g;
    const [v0, v1] = group.vols;
    // both at once: one starts the daemon, the other joins it (or loses the race for the state dir and joins)
    const mountBoth = () => Promise.all(group.vols.map((v) => mountInGroup(group, GROUP, v, env, ['--epoch-interval', '200ms'])));
    const acknowledged: string[] = []; // since the last restart
    let fsyncs = 0;
    /** Every fsync acknowledged before the kill is there with its content; then they go (through the
     *  mount: unlinks for the workload), so the tree that every mount copies stays small. */
    const expectAcknowledged = (round: number) => {
      const wrong = acknowledged.filter((line) => {
        const [name, sha] = line.split(' ');
        return !existsSync(join(v0.mnt, name)) || sha256(join(v0.mnt, name)) !== sha;
      });
      expect([`round ${round}, seed ${SEED}`, acknowledged.length, wrong]).toEqual([`round ${round}, seed ${SEED}`, acknowledged.length, []]);
      for (const line of acknowledged) unlinkSync(join(v0.mnt, line.split(' ')[0]));
      fsyncs += acknowledged.length;
      acknowledged.length = 0;
    };
    const checks: ExactCheck[] = [];
    let ops = 0;
    let killed = false;
    const batch = (seed: number, n: number) => Promise.all(group.vols.map((v, i) => runWorkload(v.mnt, { seed: seed * 2 + i, ops: n, workers: 2, stop: () => killed })))
      .then((stats) => stats.forEach((s) => (ops += s.ops)));

    for (let round = 0; round < ROUNDS; round++) {
      const r0 = Date.now();
      await mountBoth(); // after round 0: recovers the stale mount points and the journal
      const mountMs = Date.now() - r0;
      expectAcknowledged(round);
      const exact = int(3); // exact checks before the kill (0: the kill comes soon after mounting)
      const killAfterMs = 20 + int(700);
      const checkpointFirst = rnd() < 0.3; // a checkpoint just before the kill: it lands mid-epoch
      const plan = `${exact} exact checks, then kill -9 ${killAfterMs} ms into a batch${checkpointFirst ? ', just after a checkpoint' : ''}`;
      say(`round ${round}: ${plan}`);
      writer = new Writer(v0.mnt, `r${round}`);
      for (let c = 0; c < exact; c++) {
        await batch(SEED + round * 10 + c, 100);
        await writer.pause();
        for (const v of group.vols) await until('hidden files to go', () => hiddenFiles(v.backing).length === 0);
        const cp = await checkpoint();
        checks.push({ round, epoch: cp.epoch, seq: cp.seq, trees: Object.fromEntries(group.vols.map((v) => [v.name, snapshot(v.backing)])) });
        writer.resume();
      }
      const w = writer;
      await until('the first fsync of the round', () => w.acknowledged.length > 0, 30_000);
      const load = batch(SEED + round * 10 + 9, 100_000).catch(() => undefined); // runs until the kill fails it
      await new Promise((r) => setTimeout(r, killAfterMs));
      if (checkpointFirst) await epochfs(['checkpoint', '--group', GROUP, '--no-wait'], { env });
      await killGroupDaemon(group);
      killed = true;
      await Promise.all([load, writer.exited]);
      acknowledged.push(...writer.acknowledged);
      say(`round ${round} done: ${writer.acknowledged.length} fsyncs acknowledged; mounting took ${mountMs} ms, the round ${Date.now() - r0} ms`);
      writer = undefined;
      killed = false;
    }

    await mountBoth();
    expectAcknowledged(ROUNDS);
    const final = await checkpoint();
    checks.push({ round: ROUNDS, epoch: final.epoch, seq: final.seq, trees: Object.fromEntries(group.vols.map((v) => [v.name, snapshot(v.backing)])) });
    for (const v of [v1, v0]) await umountInGroup(v, env);
    say(`${ROUNDS} kills, ${fsyncs} acknowledged fsyncs, ${ops} workload operations, ${checks.length} exact checks in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const verify = await epochfs(['verify', '--store', group.store], { env });
    expect([verify.code, verify.stdout]).toEqual([0, expect.stringMatching(/: 0 problems/)]);

    const repo = await Repository.open(new LocalBackend(group.store), Buffer.from(PASS));
    const blobs = await BlobStore.load(repo);
    const epochs = await listEpochs(repo);
    // every epoch holds both volumes (the first ones: the group being mounted, vol1 not yet there)
    const firstFull = epochs.findIndex((e) => e.volumes.length === 2);
    expect(epochs.slice(firstFull).filter((e) => e.volumes.length !== 2).map((e) => `${e.id.slice(0, 16)} at ${e.seq}: ${e.volumes.map((v) => v.name)}`)).toEqual([]);
    // Every epoch restores; the checked ones to exactly the trees snapshotted at their barrier. A
    // volume's tree and root already restored are not restored again (the same objects give the
    // same tree), and restores go to tmpfs where it can: creating files on the shared disk is slow.
    expect(checks.filter((c) => !epochs.some((e) => e.id === c.epoch))).toEqual([]);
    scratch = scratchDir(group.dir);
    const restored = new Set<string>();
    for (const e of epochs) {
      const out = join(scratch, 'restored');
      const exact = checks.filter((c) => c.epoch === e.id);
      for (const v of e.volumes) {
        const key = `${v.tree} ${JSON.stringify(v.root)}`;
        if (restored.has(key) && exact.length === 0) continue;
        await restoreTree(blobs, v.tree, v.root, join(out, v.name), { chunkSize: repo.config.chunkSize });
        restored.add(key);
      }
      for (const c of exact) {
        for (const v of group.vols) {
          const label = `round ${c.round} epoch ${c.epoch.slice(0, 16)} (seq ${c.seq}) ${v.name}, seed ${SEED}`;
          expect([label, diffTrees(c.trees[v.name], snapshot(join(out, v.name)))]).toEqual([label, []]);
        }
      }
      rmSync(out, { recursive: true, force: true });
    }
    // the last epoch (at the last umount) is the backing dirs as they were left
    const latest = join(group.dir, 'latest');
    await epochfsOk(['restore', '--store', group.store, '--group', GROUP, '--epoch', 'latest', '--to', latest], { env });
    for (const v of group.vols) expect([v.name, diffTrees(snapshot(v.backing), snapshot(join(latest, v.name)))]).toEqual([v.name, []]);
    say(`${epochs.length} epochs verified and restored, in ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
  }, 400_000);
});

describe('a volume whose base is read while it serves', () => {
  // A volume joining a shipping group serves at once; its base is read from the live volume in
  // rounds (src/group/base-reader.ts), slowed here so that writes and a kill land while it is read
  // (EPOCHFS_FAULT_BASE_ROUND_MS: each round takes 1.5 s, as a large volume's would).
  it('journals every write meanwhile, survives a kill, and is then in every epoch at its exact state', async () => {
    g = await makeGroup('kill-base', 2, env);
    const group = g;
    const [v0, v1] = group.vols;
    const slow = { ...env, EPOCHFS_FAULT_BASE_ROUND_MS: '1500' };
    for (let i = 0; i < 50; i++) writeFileSync(join(v1.backing, `old-${i}`), `${i}\n`.repeat(1000));
    await mountInGroup(group, GROUP, v0, slow);
    writeFileSync(join(v0.mnt, 'f'), 'vol0 before the kill\n');
    const t0 = Date.now();
    await mountInGroup(group, GROUP, v1, slow);
    const mountMs = Date.now() - t0;
    writeFileSync(join(v1.mnt, 'old-3'), 'rewritten while the base is read\n');
    unlinkSync(join(v1.mnt, 'old-4'));
    writeFileSync(join(v1.mnt, 'new'), 'made while the base is read\n');
    const st = (await epochfsOk(['status', '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.group === GROUP) as { mode: { state: string }; bases: { reading: string[] } };
    expect([st.mode.state, st.bases.reading.length > 0, mountMs < 5000]).toEqual(['normal', true, true]);
    // every one of those writes is journaled (the journal never stops while a base is read)
    const dump = (await epochfsOk(['journal', 'dump', '--state', group.state, '--json'])).trim().split('\n').map((l) => JSON.parse(l) as { op: string; vol?: string; path?: string });
    expect(['/old-3', '/old-4', '/new'].map((p) => dump.some((r) => r.vol === 'vol1' && r.path === p))).toEqual([true, true, true]);
    await killGroupDaemon(group);

    for (const v of group.vols) await mountInGroup(group, GROUP, v, env);
    writeFileSync(join(v1.mnt, 'after'), 'after the kill\n');
    const cp = await checkpoint();
    expect(cp.volumes).toEqual(['vol0', 'vol1']);
    const out = join(group.dir, 'restored');
    await epochfsOk(['restore', '--store', group.store, '--epoch', cp.epoch, '--to', out], { env });
    for (const v of group.vols) expect([v.name, diffTrees(snapshot(v.backing), snapshot(join(out, v.name)))]).toEqual([v.name, []]);
    for (const v of [v1, v0]) await umountInGroup(v, env);
    const verify = await epochfs(['verify', '--store', group.store], { env });
    expect([verify.code, verify.stdout]).toEqual([0, expect.stringMatching(/: 0 problems/)]);
  });
});
