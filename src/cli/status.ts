// epochfs status [--json]: every running group — its volumes and mount points, journal depth,
// ship lag, last durable epoch, epoch rate, barrier pause.
import type { Command } from 'commander';
import { askDaemon } from '../group/control.js';
import { listGroups } from '../fs/registry.js';
import type { ShipperHealth } from '../shipper/client.js';
import type { ModeStatus } from '../group/backup-mode.js';
import type { BaseReadStatus } from '../group/base-reader.js';

interface GroupStatus {
  group: string;
  pid: number;
  stateDir: string;
  store: string | null;
  volumes: { name: string; mountpoint: string; backing: string }[];
  mode: ModeStatus | null;
  bases: BaseReadStatus | null;
  buffer: { used: number; max: number } | null;
  journal: { lastSeq: number; durableSeq: number; records: number; bytes: number; writesInC?: { served: number; handedToJs: number }; backingSyncedSeq?: number; fsyncs?: { journalOnly: number; withBacking: number } } | null;
  shipping: {
    lastEpoch: string | null;
    shippedSeq: number;
    lagOps: number;
    lagBytes: number;
    lagSeconds: number;
    pendingEpochs: number;
    epochsPerMinute: number;
    barrierPauseUs: { p50: number | null; p99: number | null; count: number };
    worker: ShipperHealth | null;
  } | null;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function print(s: GroupStatus): void {
  const out: string[] = [`group ${s.group} (pid ${s.pid}, state ${s.stateDir}${s.store ? `, store ${s.store}` : ''})`];
  for (const v of s.volumes) out.push(`  volume ${v.name}: ${v.backing} on ${v.mountpoint}`);
  const m = s.mode;
  if (m) {
    const dirty = m.state === 'normal' ? '' : `; ${m.dirtyPaths === 'all' ? 'every path' : `${m.dirtyPaths} paths`} to resync${m.waiting ? `, waiting for ${m.waiting}` : ''}`;
    out.push(`  mode: ${m.state} since ${m.since}${m.reason ? ` (${m.reason})` : ''}${dirty}`);
    const r = m.lastResync;
    if (r) out.push(`  last resync: ${r.at}, ${r.rounds} rounds, ${r.paths} paths, ${mib(r.bytes)} copied, mutations held ${r.pauseMs.toFixed(1)} ms`);
  }
  const b = s.bases;
  if (b?.reading.length) {
    out.push(`  base: reading ${b.reading.join(', ')} from the live volume since ${b.since}, round ${b.rounds}; epochs wait for it${b.lastError ? ` (last attempt failed: ${b.lastError})` : ''}`);
  }
  if (b?.last) out.push(`  last base read: ${b.last.vols.join(', ')} at ${b.last.at}, ${b.last.rounds} rounds in ${b.last.ms} ms, mutations held ${b.last.pauseMs.toFixed(1)} ms`);
  if (s.buffer) out.push(`  buffer: ${mib(s.buffer.used)} of ${mib(s.buffer.max)} (${((100 * s.buffer.used) / s.buffer.max).toFixed(1)} %)`);
  if (s.journal) {
    const inC = s.journal.writesInC ? `; writes served in C ${s.journal.writesInC.served}, handed to JS ${s.journal.writesInC.handedToJs}` : '';
    out.push(`  journal: seq ${s.journal.lastSeq} (durable ${s.journal.durableSeq}), ${s.journal.records} records / ${s.journal.bytes} bytes since start${inC}`);
  }
  if (s.journal?.fsyncs) {
    const f = s.journal.fsyncs;
    out.push(`  fsyncs: ${f.journalOnly} by the journal alone, ${f.withBacking} also by the backing file; backing dirs synced to seq ${s.journal.backingSyncedSeq}`);
  }
  const p = s.shipping;
  if (p) {
    out.push(`  shipped: seq ${p.shippedSeq}, last epoch ${p.lastEpoch?.slice(0, 16) ?? 'none yet'}, ${p.pendingEpochs} pending`);
    out.push(`  lag: ${p.lagOps} ops, ${p.lagBytes} bytes, ${p.lagSeconds.toFixed(1)} s; ${p.epochsPerMinute.toFixed(1)} epochs/min`);
    const us = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} µs`);
    out.push(`  barrier pause: p50 ${us(p.barrierPauseUs.p50)}, p99 ${us(p.barrierPauseUs.p99)} (${p.barrierPauseUs.count} barriers)`);
    const w = p.worker;
    if (w) out.push(`  shipper: ${w.state}${w.restarts ? `, restarted ${w.restarts} times` : ''}`);
    if (w?.lastError) out.push(`  last shipping error: ${w.lastError.time}: ${w.lastError.message}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

export function registerStatus(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  program
    .command('status')
    .description('running groups: volumes, journal depth, ship lag, last epoch, epoch rate, barrier pause')
    .option('--json', 'one JSON object per group')
    .action((opts: { json?: boolean }) =>
      run(async () => {
        for (const g of listGroups()) {
          const reply = await askDaemon(g.socket, { op: 'status' }, 10_000).catch(() => undefined);
          if (!reply?.ok) continue; // stopping, or gone since listed
          const s = reply as unknown as GroupStatus;
          if (opts.json) process.stdout.write(`${JSON.stringify(s)}\n`);
          else print(s);
        }
      }),
    );
}
