// Running the built epochfs command the way a user does.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function epochfs(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs epochfs and fails with its stderr unless it exits 0. */
export async function epochfsOk(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await epochfs(args, opts);
  if (r.code !== 0) throw new Error(`epochfs ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
