// A real database across two volumes of one group: PostgreSQL's WAL on volume A, its data on
// volume B. pgbench runs while epochs are taken every second; several epochs (the newest too) are
// restored, PostgreSQL starts on each restored pair (crash recovery), amcheck finds no corruption,
// and pgbench's invariant holds: the accounts' balances sum to the history's deltas.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, type ExecFileOptions } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { epochfs, epochfsOk } from '../helpers/cli.js';
import { TEST_ENV, tempDir } from '../helpers/env.js';

const PG_BIN = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'].find((d) => existsSync(join(d, 'initdb')));
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: 'pg-test' };
const started: { data: string }[] = [];
const mounts: string[] = [];

function uidOf(user: string): Promise<{ uid: number; gid: number } | undefined> {
  return new Promise((res) => execFile('id', ['-u', user], (e1, u) => execFile('id', ['-g', user], (e2, g) => res(e1 || e2 ? undefined : { uid: Number(u), gid: Number(g) }))));
}

/** Runs a PostgreSQL program as the postgres user. */
function pg(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', join(PG_BIN!, cmd), ...args], { timeout: 120_000, maxBuffer: 64 << 20, ...opts }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(String(stdout)),
    ),
  );
}

async function startPg(data: string, sock: string, port: number): Promise<void> {
  await pg('pg_ctl', ['-D', data, '-w', '-t', '120', '-l', join(sock, `log-${port}`), '-o', `-p ${port} -k ${sock} -c listen_addresses='' -c fsync=on`, 'start']);
  started.push({ data });
}

async function stopPg(data: string): Promise<void> {
  await pg('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']);
  started.splice(started.findIndex((s) => s.data === data), 1);
}

function sql(sock: string, port: number, query: string): Promise<string> {
  return pg('psql', ['-h', sock, '-p', String(port), '-d', 'postgres', '-At', '-v', 'ON_ERROR_STOP=1', '-c', query]).then((o) => o.trim());
}

afterAll(async () => {
  for (const s of [...started]) await stopPg(s.data).catch(() => undefined);
  for (const m of mounts) await epochfs(['umount', '--lazy', m], { env });
});

const ok = PG_BIN !== undefined && (await uidOf('postgres')) !== undefined;
if (!ok) console.log('postgres test skipped: PostgreSQL (Debian package postgresql) is not installed');

describe.skipIf(!ok)('PostgreSQL with its WAL and data on two volumes of one group', () => {
  it('every restored epoch recovers to a consistent database', async () => {
    const dir = tempDir('pg');
    const ids = (await uidOf('postgres'))!;
    const store = join(dir, 'store');
    const state = join(dir, 'state');
    const sock = join(dir, 'sock');
    mkdirSync(sock);
    chownSync(sock, ids.uid, ids.gid);
    await epochfsOk(['init', '--store', store], { env });
    const vols = { wal: join(dir, 'wal'), data: join(dir, 'data') };
    const mnts = { wal: join(dir, 'mnt-wal'), data: join(dir, 'mnt-data') };
    for (const name of ['wal', 'data'] as const) {
      mkdirSync(vols[name]);
      mkdirSync(mnts[name]);
      await epochfsOk(['mount', vols[name], mnts[name], '--group', 'pg', '--name', name, '--state', state, '--store', store, '--epoch-interval', '1s'], { env });
      mounts.push(mnts[name]);
      chownSync(mnts[name], ids.uid, ids.gid);
    }
    const pgdata = join(mnts.data, 'pgdata');
    await pg('initdb', ['-D', pgdata, '--waldir', join(mnts.wal, 'pg_wal'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await startPg(pgdata, sock, 55432);
    await pg('pgbench', ['-h', sock, '-p', '55432', '-i', '-s', '2', '-q', 'postgres']);
    const bench = pg('pgbench', ['-h', sock, '-p', '55432', '-c', '4', '-j', '2', '-T', '12', 'postgres']);
    const checkpoints: string[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 2500));
      checkpoints.push(JSON.parse(await epochfsOk(['checkpoint', mnts.data, '--json'], { env })).epoch);
    }
    const out = await bench;
    expect(out).toMatch(/number of transactions actually processed: [1-9]/);
    checkpoints.push(JSON.parse(await epochfsOk(['checkpoint', mnts.data, '--json'], { env })).epoch); // the newest, pgbench done
    await stopPg(pgdata);
    for (const m of Object.values(mnts)) await epochfsOk(['umount', m], { env });
    mounts.length = 0;

    const epochs = (await epochfsOk(['epochs', '--store', store, '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l));
    expect(epochs.length).toBeGreaterThan(8); // epochs every second, plus the checkpoints
    const history: number[] = [];
    for (const [i, id] of checkpoints.entries()) {
      const target = join(dir, `restored-${i}`);
      await epochfsOk(['restore', '--store', store, '--epoch', id, '--to', target], { env });
      expect(readdirSync(target).sort()).toEqual(['data', 'wal']);
      // pg_wal is a symlink to where the WAL volume was mounted: point it at the restored one
      const link = join(target, 'data', 'pgdata', 'pg_wal');
      expect(readlinkSync(link)).toBe(join(mnts.wal, 'pg_wal'));
      rmSync(link);
      symlinkSync(join(target, 'wal', 'pg_wal'), link);
      const port = 55433 + i;
      await startPg(join(target, 'data', 'pgdata'), sock, port); // crash recovery from the epoch
      await sql(sock, port, 'CREATE EXTENSION IF NOT EXISTS amcheck');
      const checked = await sql(sock, port, `SELECT count(bt_index_check(c.oid, true)) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence <> 't'`);
      expect(Number(checked)).toBeGreaterThan(0);
      const [balances, deltas] = (await sql(sock, port, 'SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)')).split('|');
      expect([id, balances]).toEqual([id, deltas]);
      const [tellers, branches] = (await sql(sock, port, 'SELECT (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches)')).split('|');
      expect([tellers, branches]).toEqual([deltas, deltas]);
      history.push(Number(await sql(sock, port, 'SELECT count(*) FROM pgbench_history')));
      await stopPg(join(target, 'data', 'pgdata'));
    }
    // the epochs were taken while transactions committed: later ones hold more of them
    expect(history[history.length - 1]).toBeGreaterThan(history[0]);
    expect(history[0]).toBeGreaterThan(0);
  });
});
