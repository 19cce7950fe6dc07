// issue 8: the control socket takes random and malformed requests — random bytes, valid requests
// with fields of the wrong type or missing, huge strings, deep nesting, unknown ops, many requests
// on one connection, a request cut off by a closed connection, a slow client — and answers each
// line with exactly one reply (an error with a code when it is malformed), never crashes or hangs,
// and serves a valid `status` afterwards. The handler behind it sees only well-formed requests.
// First the real serveControl on a real unix socket (many cases), then a real group daemon.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { askDaemon, serveControl, type ControlRequest } from '../../src/group/control.js';
import { epochfsOk } from '../helpers/cli.js';
import { RUN_DIR, TEST_ENV, tempDir } from '../helpers/env.js';
import { makeGroup, mountInGroup, umountInGroup, umountTracked } from '../helpers/group.js';
import { prng } from '../helpers/workload.js';

const SERVER_CASES = 1000;
const DAEMON_CASES = 150;
const env = { ...TEST_ENV, EPOCHFS_PASSPHRASE: 'control-fuzz' };
afterEach(() => umountTracked(env));

const int = (rnd: () => number, n: number) => Math.floor(rnd() * n);
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[int(rnd, xs.length)];

/** Valid requests of every op (the attach names a backing dir that does not exist: it fails, mounting nothing). */
function templates(dir: string): ControlRequest[] {
  return [
    { op: 'status' },
    { op: 'checkpoint', wait: false },
    { op: 'remove-volume', name: 'gone' },
    { op: 'attach', name: 'fz', backing: join(dir, 'no-such-backing'), mountpoint: join(dir, 'no-such-mnt'), cacheTimeout: 1, groupVolumes: ['fz', 'vol0'] },
  ];
}

const VALUES: unknown[] = [
  null, true, false, 0, -1, 1.5, 1e308, -0, '', '/', 'relative/path', '..', 'x\0y', 'status', 'attach', 'checkpoint', 'remove-volume',
  '__proto__', 'constructor', 'toString', [], {}, ['a', 1], ['-bad'], [null], { op: 'status' }, 'v'.repeat(65), '/'.repeat(5000),
];

/** A copy of `v` with one field somewhere replaced, removed or added. */
function mutate(rnd: () => number, v: unknown): unknown {
  if (v === null || typeof v !== 'object' || rnd() < 0.1) return pick(rnd, VALUES);
  const copy: { [k: string]: unknown } = Array.isArray(v) ? ({ ...v } as { [k: string]: unknown }) : { ...(v as object) };
  const keys = Object.keys(copy);
  const r = rnd();
  if (r < 0.2 || keys.length === 0) copy[pick(rnd, ['op', 'name', 'wait', 'backing', 'mountpoint', 'cacheTimeout', 'groupVolumes', '__proto__', 'x'])] = pick(rnd, VALUES);
  else if (r < 0.4) delete copy[pick(rnd, keys)];
  else {
    const k = pick(rnd, keys);
    copy[k] = mutate(rnd, copy[k]);
  }
  return Array.isArray(v) ? Object.values(copy) : copy;
}

/** One request line's text (without its newline): random bytes, JSON that is not a request, or a mutated request. */
function requestLine(rnd: () => number, valid: ControlRequest[]): Buffer {
  switch (int(rnd, 8)) {
    case 0: return Buffer.from(Array.from({ length: int(rnd, 60) }, () => int(rnd, 256)));
    case 1: return Buffer.from(JSON.stringify(pick(rnd, VALUES)));
    case 2: return Buffer.from(JSON.stringify({ ...pick(rnd, valid), op: pick(rnd, ['', 'STATUS', 'stop', 'exec', 'hasOwnProperty', 'x'.repeat(10_000)]) }));
    case 3: { // deep nesting
      const depth = 1 + int(rnd, 50_000);
      return Buffer.from(rnd() < 0.5 ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"op":'.repeat(depth)}1${'}'.repeat(depth)}`);
    }
    case 4: { // a huge string in some field
      const req = { ...pick(rnd, valid) } as { [k: string]: unknown };
      req[pick(rnd, ['op', 'name', 'backing', 'mountpoint'])] = `/${'x'.repeat(10_000 + int(rnd, 200_000))}`;
      return Buffer.from(JSON.stringify(req));
    }
    case 5: { // valid JSON with bytes changed
      const b = Buffer.from(JSON.stringify(pick(rnd, valid)));
      for (let i = 0, n = 1 + int(rnd, 3); i < n; i++) b[int(rnd, b.length)] = int(rnd, 256);
      return b;
    }
    default: return Buffer.from(JSON.stringify(mutate(rnd, pick(rnd, valid))) ?? 'null');
  }
}

interface Exchange {
  replies: { [k: string]: unknown }[];
  /** the server closed the connection */
  closed: boolean;
}

/**
 * Sends `payload` (in pieces of `chunk` bytes, `delayMs` apart), then waits for `expected` reply
 * lines or for the server to close; `end` half-closes after sending. Fails after `timeoutMs`: a
 * server that neither answers nor closes hangs.
 */
function exchange(socket: string, payload: Buffer, expected: number, opts: { chunk?: number; delayMs?: number; end?: boolean; timeoutMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    const replies: { [k: string]: unknown }[] = [];
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no answer: ${replies.length} of ${expected} replies to ${JSON.stringify(payload.subarray(0, 200).toString('latin1'))}`));
    }, opts.timeoutMs ?? 10_000);
    const done = (closed: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve({ replies, closed });
    };
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        replies.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
      if (replies.length >= expected && !opts.end) done(false);
    });
    conn.on('close', () => done(true));
    conn.on('error', () => {}); // a reset by the server shows as close
    conn.on('connect', async () => {
      const chunk = opts.chunk ?? payload.length;
      for (let at = 0; at < payload.length; at += chunk) {
        if (conn.destroyed) return;
        conn.write(payload.subarray(at, at + chunk));
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      }
      if (opts.end) conn.end();
    });
  });
}

/** Every reply is `{ok: true, ...}` or an error with a one-line message and a code. */
function checkReply(reply: { [k: string]: unknown }, what: string): void {
  if (reply.ok === true) return;
  expect(reply.ok, what).toBe(false);
  expect(typeof reply.error === 'string' && !reply.error.includes('\n'), `${what}: error ${JSON.stringify(reply.error)}`).toBe(true);
  expect(typeof reply.code === 'string' && /^E[A-Z]+$/.test(reply.code), `${what}: code ${JSON.stringify(reply.code)}`).toBe(true);
}

/** The shape every request the handler gets MUST have (src/group/control.ts's contract). */
function wellFormed(req: unknown): boolean {
  const r = req as { [k: string]: unknown };
  const name = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v);
  const abs = (v: unknown) => typeof v === 'string' && v.startsWith('/') && !v.includes('\0') && v.length <= 4096;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return false;
  switch (r.op) {
    case 'status': return true;
    case 'checkpoint': return typeof r.wait === 'boolean';
    case 'remove-volume': return name(r.name);
    case 'attach':
      return name(r.name) && abs(r.backing) && abs(r.mountpoint) && typeof r.cacheTimeout === 'number' && Number.isFinite(r.cacheTimeout) && r.cacheTimeout >= 0
        && (r.groupVolumes === undefined || (Array.isArray(r.groupVolumes) && r.groupVolumes.every(name)));
    default: return false;
  }
}

const lines = (...reqs: unknown[]) => Buffer.from(reqs.map((r) => `${typeof r === 'string' ? r : JSON.stringify(r)}\n`).join(''));

describe('control socket under random and malformed requests', () => {
  it('serveControl: one reply per line, an error with a code for every malformed one; the handler sees only well-formed requests', async () => {
    const dir = tempDir('cfuzz');
    const socket = join(dir, 'control.sock');
    const seen: unknown[] = [];
    const server = serveControl(socket, async (req) => {
      seen.push(req);
      return { ok: true, op: req.op };
    });
    try {
      const valid = templates(dir);
      const rnd = prng(91);
      for (let i = 0; i < SERVER_CASES; i++) {
        // 1-4 requests on one connection; a valid one now and then
        const parts = Array.from({ length: 1 + int(rnd, 4) }, () => (rnd() < 0.1 ? Buffer.from(JSON.stringify(pick(rnd, valid))) : requestLine(rnd, valid)));
        const payload = Buffer.concat(parts.flatMap((p) => [p, Buffer.from('\n')]));
        const expected = payload.filter((b) => b === 0x0a).length;
        const { replies } = await exchange(socket, payload, expected);
        expect(replies.length, `case ${i}`).toBe(expected);
        replies.forEach((r) => checkReply(r, `case ${i}`));
      }
      const bad = seen.filter((r) => !wellFormed(r));
      expect(bad.slice(0, 3).map((r) => JSON.stringify(r)?.slice(0, 300))).toEqual([]);
      expect(seen.length).toBeGreaterThan(50);
      expect((await askDaemon(socket, { op: 'status' }, 5_000)).ok).toBe(true);
    } finally {
      server.close();
    }
  });

  it('serveControl: an endless line, many requests on one connection, a cut-off request, a slow client and a client that leaves early', async () => {
    const dir = tempDir('cfuzz');
    const socket = join(dir, 'control.sock');
    let calls = 0;
    const server = serveControl(socket, async (req) => {
      calls++;
      if (req.op === 'checkpoint') await new Promise((r) => setTimeout(r, 50)); // slower than the ones after it
      return { ok: true, op: req.op };
    });
    try {
      // a line that never ends: refused once it is too long for any request, and the connection closed
      const endless = await exchange(socket, Buffer.alloc(4 << 20, 'x'), 1, { chunk: 64 << 10 });
      expect(endless.replies).toHaveLength(1);
      checkReply(endless.replies[0], 'endless line');
      expect(endless.replies[0].ok).toBe(false);
      // many requests in one write: every one answered, in order (a slow one does not let later ones overtake it)
      const many = Array.from({ length: 2000 }, (_, k) => (k % 100 === 7 ? { op: 'checkpoint', wait: true } : k % 3 ? { op: 'status' } : 'junk'));
      const all = await exchange(socket, lines(...many), many.length);
      expect(all.replies.map((r) => r.op ?? 'error')).toEqual(many.map((r) => (typeof r === 'string' ? 'error' : r.op)));
      // a request without its newline, then the client closes: nothing is run, the server closes too
      const before = calls;
      const cut = await exchange(socket, Buffer.from('{"op":"status"}'), 1, { end: true });
      expect(cut).toEqual({ replies: [], closed: true });
      expect(calls).toBe(before);
      // a slow client, a byte at a time
      const slow = await exchange(socket, lines({ op: 'status' }), 1, { chunk: 1, delayMs: 2 });
      expect(slow.replies).toEqual([{ ok: true, op: 'status' }]);
      // a client that leaves before its (slow) answer
      const early = createConnection(socket);
      early.on('error', () => {});
      await new Promise<void>((r) => early.on('connect', () => r()));
      early.write(lines({ op: 'checkpoint', wait: true }));
      early.destroy();
      await new Promise((r) => setTimeout(r, 100));
      expect(await askDaemon(socket, { op: 'status' }, 5_000)).toEqual({ ok: true, op: 'status' });
    } finally {
      server.close();
    }
  });

  it('a real group daemon answers every malformed request, keeps serving status and its mount, and stops cleanly', async () => {
    const g = await makeGroup('cfuzz-daemon', 1, env);
    const group = 'cfuzz';
    const [v] = g.vols;
    await mountInGroup(g, group, v, env);
    const entry = JSON.parse(readFileSync(join(RUN_DIR, 'groups', `${group}.json`), 'utf8')) as { pid: number; socket: string };
    const valid = templates(g.dir);
    const rnd = prng(92);
    for (let i = 0; i < DAEMON_CASES; i++) {
      const payload = Buffer.concat([requestLine(rnd, valid), Buffer.from('\n')]);
      const expected = payload.filter((b) => b === 0x0a).length;
      const { replies } = await exchange(entry.socket, payload, expected, { timeoutMs: 30_000 });
      expect(replies.length, `case ${i}`).toBe(expected);
      replies.forEach((r) => checkReply(r, `case ${i}`));
    }
    const endless = await exchange(entry.socket, Buffer.alloc(4 << 20, '['), 1, { chunk: 64 << 10 });
    expect(endless.replies[0]?.ok).toBe(false);
    await exchange(entry.socket, Buffer.from('{"op":"status"'), 1, { end: true });
    expect(() => process.kill(entry.pid, 0)).not.toThrow();
    const groups = (await epochfsOk(['status', '--json'], { env })).trim().split('\n').map((l) => JSON.parse(l) as { group: string; pid: number; volumes: { name: string }[] });
    expect(groups.find((s) => s.group === group)).toMatchObject({ pid: entry.pid, volumes: [{ name: v.name }] });
    writeFileSync(join(v.mnt, 'f'), 'still served');
    expect(readFileSync(join(v.mnt, 'f'), 'utf8')).toBe('still served');
    await umountInGroup(v, env);
    expect(readFileSync(join(g.state, 'daemon.log'), 'utf8')).not.toMatch(/\n\s+at /); // no stack trace
  });
});
