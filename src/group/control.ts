// The daemon's control socket: newline-delimited JSON requests and replies on a unix socket under
// the run dir (/run/epochfs/sockets), found through the daemon registry.
import { createServer, createConnection, type Server } from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EpochfsError, toUserError } from '../util/errors.js';

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

export function serveControl(path: string, handle: ControlHandler): Server {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  const server = createServer((conn) => {
    let buf = '';
    conn.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: ControlRequest;
        try {
          req = JSON.parse(line);
        } catch {
          conn.write(`${JSON.stringify({ ok: false, error: 'malformed request' })}\n`);
          continue;
        }
        handle(req).then(
          (reply) => conn.write(`${JSON.stringify(reply)}\n`),
          (err) => {
            const e = toUserError(err); // one line, as the mount command that asked will print it
            conn.write(`${JSON.stringify({ ok: false, error: e.message, code: e.code })}\n`);
          },
        );
      }
    });
    conn.on('error', () => {});
  });
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
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      resolve(JSON.parse(buf.slice(0, nl)) as ControlReply);
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
