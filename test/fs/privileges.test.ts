// Setuid, setgid and security.capability after a write or truncate, now that the kernel leaves
// clearing them to the filesystem (FUSE_HANDLE_KILLPRIV_V2; docs/ARCHITECTURE.md, "Setuid, setgid
// and capabilities"). The oracle is the same sequence run on a plain directory (ext4 or tmpfs: the
// kernel's own rule); the mount must leave exactly that, the journal must replay to it, and an
// epoch must restore it.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';
import { diffTrees, snapshot, type TreeState } from '../helpers/tree.js';
import { modeAfterKill } from '../../src/fs/privileges.js';
import { sys } from '../../src/native/sys.js';

const PASS = 'privileges-test';
process.env.EPOCHFS_PASSPHRASE = PASS;
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: PASS };

const NOBODY = 65534; // the writer without CAP_FSETID: uid nobody, gid nogroup, also in group USERS
const USERS = 100;
// security.capability, VFS_CAP_REVISION_2 with the effective flag and cap_net_raw permitted
const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex');

/** Files by kind: mode, group (the owner is root), and a capability. */
const KINDS: { [kind: string]: { mode: number; gid: number; cap?: boolean } } = {
  suid: { mode: 0o4777, gid: 0 },
  sgidx: { mode: 0o2777, gid: 0 }, // setgid and group-executable: a setgid program
  sgidIn: { mode: 0o2767, gid: NOBODY }, // setgid only (a locking mark), the writer's own group
  sgidSup: { mode: 0o2767, gid: USERS }, // ... one of the writer's supplementary groups
  sgidOut: { mode: 0o2767, gid: 0 }, // ... a group the writer is not in
  both: { mode: 0o6777, gid: 0 },
  plain: { mode: 0o777, gid: 0 },
  cap: { mode: 0o777, gid: 0, cap: true },
};
// write(2) at an offset, truncate(2) of the path, ftruncate(2), open(O_TRUNC)
const OPS = ['write', 'truncate', 'ftruncate', 'otrunc'];

/** The tree every run starts from: one file per kind and operation, plus files root changes. */
function populate(dir: string): void {
  const make = (name: string, mode: number, gid: number, cap = false): void => {
    const path = join(dir, name);
    writeFileSync(path, 'original content\n');
    chownSync(path, 0, gid);
    chmodSync(path, mode);
    if (cap) expect(sys.lsetxattr(path, 'security.capability', CAPABILITY, 0)).toBe(0);
  };
  for (const [kind, k] of Object.entries(KINDS)) for (const op of OPS) make(`${kind}-${op}`, k.mode, k.gid, k.cap);
  for (const op of OPS) make(`root-${op}`, 0o6777, 0);
  make('again', 0o777, 0); // written, made setuid by root, written again
  mkdirSync(join(dir, 'sub'), { mode: 0o777 });
  make('sub/deep', 0o4777, 0);
}

// One perl process per caller runs every operation in order; perl's truncate of a name is truncate(2).
const PERL = `
for (@ARGV) {
  my ($op, $f) = split /=/, $_, 2;
  if ($op eq 'write') { open(my $h, '+<', $f) or die "$f: $!"; sysseek($h, 3, 0); syswrite($h, 'XY') == 2 or die "$f: $!"; close $h }
  elsif ($op eq 'truncate') { truncate($f, 5) or die "$f: $!" }
  elsif ($op eq 'ftruncate') { open(my $h, '+<', $f) or die "$f: $!"; truncate($h, 7) or die "$f: $!"; close $h }
  elsif ($op eq 'otrunc') { open(my $h, '>', $f) or die "$f: $!"; close $h }
  elsif ($op eq 'setuid') { chmod(04777, $f) or die "$f: $!" }
  else { die "unknown $op" }
}`;

function run(dir: string, asNobody: boolean, steps: string[]): void {
  const args = ['-e', PERL, ...steps.map((s) => { const [op, name] = s.split('='); return `${op}=${join(dir, name)}`; })];
  if (asNobody) execFileSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), `--groups=${USERS}`, 'perl', ...args]);
  else execFileSync('perl', args);
}

/** The same sequence, on a plain directory or a mount. */
function sequence(dir: string): void {
  run(dir, true, [...Object.keys(KINDS).flatMap((kind) => OPS.map((op) => `${op}=${kind}-${op}`)), 'write=again', 'write=sub/deep']);
  run(dir, false, [...OPS.map((op) => `${op}=root-${op}`), 'setuid=again']);
  run(dir, true, ['write=again']);
}

/** What the oracle compares: everything but the times (the two trees were changed at other instants). */
function privileges(tree: TreeState): { [path: string]: unknown } {
  return Object.fromEntries(Object.entries(tree).map(([p, n]) => [p, { mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, sha256: n.sha256, xattrs: n.xattrs }]));
}

async function writesInC(mnt: string): Promise<{ served: number; handedToJs: number }> {
  const lines = (await epochfsOk(['status', '--json'], { env: TEST_ENV })).trim().split('\n').filter(Boolean);
  const s = lines.map((l) => JSON.parse(l)).find((x) => x.volumes.some((m: { mountpoint: string }) => m.mountpoint === mnt));
  return s.journal.writesInC;
}

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

describe('setuid, setgid and capabilities on writes and truncates', () => {
  it('leave what a plain directory leaves, replay to it, and restore from an epoch', async () => {
    vol = makeVolume('privileges', populate);
    const plain = join(vol.dir, 'plain');
    mkdirSync(plain, { mode: 0o755 });
    populate(plain);
    sequence(plain);
    const oracle = snapshot(plain);
    // the oracle itself: a writer without CAP_FSETID drops these, root keeps them
    expect(oracle['suid-write'].mode).toBe('777');
    expect(oracle['sgidx-truncate'].mode).toBe('777');
    expect(oracle['sgidIn-write'].mode).toBe('2767');
    expect(oracle['sgidSup-otrunc'].mode).toBe('2767');
    expect(oracle['sgidOut-ftruncate'].mode).toBe('767');
    expect(oracle['cap-write'].xattrs).toEqual({});
    expect(oracle['root-write'].mode).toBe('6777');
    expect(oracle.again.mode).toBe('777');

    const store = join(vol.dir, 'store');
    await epochfsOk(['init', '--store', store], { env });
    await vol.mount(['--store', store]);
    const before = await writesInC(vol.mnt);
    sequence(vol.mnt);
    const after = await writesInC(vol.mnt);
    // a flagged write goes to JS only where the file has bits to clear: in C, the plain and
    // capability files' writes, the first write of `again` and root's write; in JS, the writes of
    // the 6 setuid/setgid kinds, sub/deep and the second write of `again`
    expect({ served: after.served - before.served, handedToJs: after.handedToJs - before.handedToJs }).toEqual({ served: 4, handedToJs: 8 });
    expect(diffTrees(privileges(snapshot(vol.mnt)) as TreeState, privileges(oracle) as TreeState, 50)).toEqual([]);

    await epochfsOk(['checkpoint', vol.mnt], { env });
    await vol.umount();
    const live = snapshot(vol.backing);
    expect(diffTrees(privileges(live) as TreeState, privileges(oracle) as TreeState, 50)).toEqual([]);
    expect(diffTrees(live, snapshot(await vol.replay()), 50)).toEqual([]);
    const out = join(vol.dir, 'restored');
    await epochfsOk(['restore', '--store', store, '--epoch', 'latest', '--to', out], { env });
    expect(diffTrees(live, snapshot(join(out, 'backing')), 50)).toEqual([]);
  });

  it('clears bits by the VFS rule: setuid always, setgid if group-executable or not the caller\'s group', () => {
    const caller = { gid: 1000, pid: 1 };
    const groups = (): number[] => [20, 30];
    expect(modeAfterKill(0o4755, 0, caller, groups)).toBe(0o755);
    expect(modeAfterKill(0o2775, 1000, caller, groups)).toBe(0o775); // group-executable: always
    expect(modeAfterKill(0o2765, 1000, caller, groups)).toBe(0o2765); // the caller's fsgid
    expect(modeAfterKill(0o2765, 30, caller, groups)).toBe(0o2765); // a supplementary group
    expect(modeAfterKill(0o2765, 40, caller, groups)).toBe(0o765);
    expect(modeAfterKill(0o6775, 1000, caller, groups)).toBe(0o775);
    let asked = 0;
    expect(modeAfterKill(0o4755, 0, caller, () => (asked++, []))).toBe(0o755);
    expect(modeAfterKill(0o644, 0, caller, () => (asked++, []))).toBe(0o644);
    expect(asked).toBe(0); // the caller's groups are read only when the answer depends on them
  });
});
