#!/usr/bin/env node
// epochfs-inspect: a look inside a volume's state dir without disturbing its daemon.
//   epochfs-inspect journal --state <dir> [--json]   segments, record counts and bytes by operation,
//                                                     first/last seq, daemon and clean-stop state
// (epochs, lag, diff and verify join it as the store and shipper arrive.)
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { readJournal } from '../src/journal/cursor.js';
import { journalDir, listSegments } from '../src/journal/journal.js';
import { segmentName } from '../src/journal/segment.js';
import { isAlive } from '../src/fs/registry.js';
import { CommanderError } from 'commander';
import { EpochfsError, ExitCode, toUserError } from '../src/util/errors.js';
import { exitQuietlyOnEpipe } from '../src/util/stdout.js';
import { VERSION } from '../src/util/version.js';

interface JournalSummary {
  stateDir: string;
  daemon: { pid: number; running: boolean } | null;
  segments: { name: string; bytes: number }[];
  firstSeq: number | null;
  lastSeq: number | null;
  records: number;
  byOp: { [op: string]: { records: number; payloadBytes: number } };
  uncleanStops: number;
  mounts: number;
}

function daemonOf(stateDir: string): JournalSummary['daemon'] {
  const pidFile = join(stateDir, 'daemon.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  return { pid, running: isAlive(pid) };
}

function summarize(stateDir: string): JournalSummary {
  const dir = journalDir(stateDir);
  if (!existsSync(dir)) throw new EpochfsError('ENOSTATE', `no journal in state dir ${stateDir}`);
  const s: JournalSummary = {
    stateDir, daemon: daemonOf(stateDir), firstSeq: null, lastSeq: null, records: 0, byOp: {}, uncleanStops: 0, mounts: 0,
    segments: listSegments(dir).map((n) => ({ name: segmentName(n), bytes: statSync(join(dir, segmentName(n))).size })),
  };
  for (const rec of readJournal(stateDir)) {
    s.firstSeq ??= rec.seq;
    s.lastSeq = rec.seq;
    s.records++;
    const entry = (s.byOp[rec.op] ??= { records: 0, payloadBytes: 0 });
    entry.records++;
    if (rec.op === 'write') entry.payloadBytes += rec.data.length;
    if (rec.op === 'setxattr') entry.payloadBytes += rec.value.length;
    if (rec.op === 'unclean') s.uncleanStops++;
    if (rec.op === 'mount') s.mounts++;
  }
  return s;
}

function print(s: JournalSummary): void {
  const out = process.stdout;
  out.write(`state dir   ${s.stateDir}\n`);
  out.write(`daemon      ${s.daemon ? `pid ${s.daemon.pid} ${s.daemon.running ? 'running' : 'not running (stale pid file)'}` : 'not running'}\n`);
  out.write(`records     ${s.records} (seq ${s.firstSeq ?? '-'} .. ${s.lastSeq ?? '-'}), ${s.mounts} mounts, ${s.uncleanStops} unclean stops\n`);
  out.write(`segments    ${s.segments.length}, ${s.segments.reduce((n, x) => n + x.bytes, 0)} bytes\n`);
  for (const [op, v] of Object.entries(s.byOp).sort((a, b) => b[1].records - a[1].records)) {
    out.write(`  ${op.padEnd(12)} ${String(v.records).padStart(10)}${v.payloadBytes ? `  ${v.payloadBytes} payload bytes` : ''}\n`);
  }
}

exitQuietlyOnEpipe(ExitCode.failure);

const program = new Command('epochfs-inspect').description('inspect epochfs state').version(VERSION).exitOverride();
program
  .command('journal')
  .description('summarize a volume\'s journal')
  .requiredOption('--state <dir>', 'the volume\'s state dir')
  .option('--json', 'machine-readable output')
  .action((opts: { state: string; json?: boolean }) => {
    const s = summarize(resolve(opts.state));
    if (opts.json) process.stdout.write(`${JSON.stringify(s)}\n`);
    else print(s);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : ExitCode.usage);
  const e = toUserError(err);
  process.stderr.write(`epochfs-inspect: ${e.message}\n`);
  process.exit(e.exitCode);
}
