// The daemon's control socket: newline-delimited JSON requests and replies on a unix socket under
// the run dir (/run/epochfs/sockets), found through the daemon registry.
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EpochfsError, toUserError } from '../util/errors.js';
import { isAbsolutePath, isName, isPlain, NAME_RULE } from '../util/shape.js';

export interface AttachRequest {
  op: 'attach';
  name: string;
  backing: string;
  mountpoint: string;
  cacheTimeout: number;
  /** --group-volumes: every volume the group is made of (epochs before all joined are partial) */
  groupVolumes?: string[];
}

export type ControlRequest = { op: 'checkpoint'; wait: boolean } | { op: 'status' } | { op: 'remove-volume'; name: string } | AttachRequest;
export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string; code?: string };
export type ControlHandler = (req: ControlRequest) => Promise<ControlReply>;

/**
 * The longest request line: far more than any request needs (an attach with two PATH_MAX paths and
 * a long --group-volumes list), so a client that never sends a newline cannot make the daemon buffer
 * without end.
 */
export const MAX_REQUEST = 1 << 20;

const usage = (why: string): ControlReply => ({ ok: false, error: `malformed request: ${why}`, code: 'EUSAGE' });

/** How a request names its op in an error: quoted, cut short (it may be anything a client sent). */
function opName(op: unknown): string {
  return typeof op === 'string' ? JSON.stringify(op.length > 40 ? `${op.slice(0, 40)}...` : op) : `of type ${op === null ? 'null' : typeof op}`;
}

/**
 * The request a parsed line holds, with only the fields of its op, each checked; or why it is none.
 * The daemon's handler therefore only ever sees requests of the types above.
 */
export function parseRequest(v: unknown): ControlRequest | string {
  if (!isPlain(v)) return 'not a JSON object';
  switch (v.op) {
    case 'status':
      return { op: 'status' };
    case 'checkpoint':
      return typeof v.wait === 'boolean' ? { op: 'checkpoint', wait: v.wait } : 'checkpoint needs wait: true or false';
    case 'remove-volume':
      return isName(v.name) ? { op: 'remove-volume', name: v.name } : `remove-volume needs a volume name (${NAME_RULE})`;
    case 'attach': {
      if (!isName(v.name)) return `attach needs a volume name (${NAME_RULE})`;
      if (!isAbsolutePath(v.backing) || !isAbsolutePath(v.mountpoint)) return 'attach needs an absolute backing dir and mount point';
      if (typeof v.cacheTimeout !== 'number' || !Number.isFinite(v.cacheTimeout) || v.cacheTimeout < 0) return 'attach needs a non-negative cacheTimeout';
      const gv = v.groupVolumes;
      if (gv !== undefined && !(Array.isArray(gv) && gv.every(isName))) return `attach's groupVolumes must be a list of volume names (${NAME_RULE})`;
      const req: AttachRequest = { op: 'attach', name: v.name, backing: v.backing, mountpoint: v.mountpoint, cacheTimeout: v.cacheTimeout };
      if (gv !== undefined) req.groupVolumes = [...(gv as string[])];
      return req;
    }
    default:
      return v.op === undefined ? 'no op' : `unknown op ${opName(v.op)}`;
  }
}

/** The reply to one request line; never throws (a failing handler's error is the reply). */
async function answer(line: string, handle: ControlHandler): Promise<ControlReply> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return usage('not JSON');
  }
  const req = parseRequest(parsed);
  if (typeof req === 'string') return usage(req);
  try {
    return await handle(req);
  } catch (err) {
    const e = toUserError(err); // one line, as the mount command that asked will print it
    return { ok: false, error: e.message, code: e.code };
  }
}

/** One reply line. A reply JSON cannot carry (a bug) becomes an error reply, not an exception. */
function replyLine(reply: ControlReply): string {
  try {
    if (!reply.ok) reply = { ...reply, error: String(reply.error).split('\n')[0] };
    return `${JSON.stringify(reply)}\n`;
  } catch (err) {
    return `${JSON.stringify({ ok: false, error: `unsendable reply: ${(err as Error).message}`, code: 'EDAEMON' })}\n`;
  }
}

/**
 * Serves one connection: each line is one request, answered in order with one reply line, one
 * request at a time (reading pauses meanwhile, so a client that floods requests or never reads its
 * replies holds back only itself). A line longer than MAX_REQUEST is answered with an error and the
 * connection closed; a last line without its newline when the client closes is not a request.
 */
function serveConnection(conn: Socket, handle: ControlHandler): void {
  conn.setEncoding('utf8'); // a multi-byte character split between two reads stays whole
  let buf = '';
  const lines: string[] = [];
  let serving = false;
  const drained = () => new Promise<void>((resolve) => {
    const done = () => {
      conn.off('drain', done);
      conn.off('close', done);
      resolve();
    };
    conn.on('drain', done);
    conn.on('close', done);
  });
  const serve = async () => {
    serving = true;
    conn.pause();
    while (lines.length > 0 && !conn.destroyed) {
      const line = replyLine(await answer(lines.shift()!, handle));
      if (!conn.destroyed && !conn.write(line)) await drained();
    }
    serving = false;
    if (!conn.destroyed) conn.resume();
  };
  conn.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > MAX_REQUEST) {
      conn.removeAllListeners('data');
      conn.end(replyLine(usage(`a request line longer than ${MAX_REQUEST} bytes`)), () => conn.destroy());
      return;
    }
    if (!serving && lines.length > 0) void serve();
  });
  conn.on('error', () => {}); // a client that went away: nothing to tell it
}

export function serveControl(path: string, handle: ControlHandler): Server {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  const server = createServer((conn) => serveConnection(conn, handle));
  server.listen(path);
  server.unref();
  return server;
}

/** Sends one request to a daemon and returns its reply. */
export function askDaemon(path: string, req: ControlRequest, timeoutMs = 600_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new EpochfsError('EDAEMON', `no answer from the daemon at ${path}`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      let reply: unknown;
      try {
        reply = JSON.parse(buf.slice(0, nl));
      } catch {
        reply = undefined;
      }
      if (isPlain(reply) && (reply.ok === true || typeof reply.error === 'string')) resolve(reply as ControlReply);
      else reject(new EpochfsError('EDAEMON', `the daemon at ${path} sent a malformed reply`));
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new EpochfsError('EDAEMON', `cannot reach the daemon at ${path}: ${err.message}`));
    });
    conn.on('close', () => {
      clearTimeout(timer);
      reject(new EpochfsError('EDAEMON', `the daemon at ${path} closed the connection without an answer`));
    });
  });
}
