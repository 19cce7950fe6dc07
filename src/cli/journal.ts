// epochfs journal dump | replay: read a volume's journal (also while its daemon runs).
import { existsSync, lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readJournal } from '../journal/cursor.js';
import { journalDir } from '../journal/journal.js';
import { recordToJson, type Record } from '../journal/record.js';
import { replayJournal } from '../journal/replay.js';
import { EpochfsError } from '../util/errors.js';
import { parseSeq } from './options.js';

function requireJournal(stateDir: string): string {
  const abs = resolve(stateDir);
  if (!existsSync(journalDir(abs))) throw new EpochfsError('ENOSTATE', `no journal in state dir ${abs}`);
  return abs;
}

/**
 * A name as a terminal may show it: control and other non-printable characters, U+FFFD and the
 * backslash itself become \xNN per UTF-8 byte; a byte that is not valid UTF-8 (which the
 * names-are-bytes codec carries as the lone surrogate U+DC00 + byte) is \xNN of that byte.
 */
function escapeName(s: string): string {
  return s.replace(/[\p{C}\p{Zl}\p{Zp}\uFFFD\\]/gu, (c) => {
    const cp = c.codePointAt(0)!;
    const bytes = cp >= 0xdc80 && cp <= 0xdcff ? [cp - 0xdc00] : [...Buffer.from(c)];
    return bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  });
}

function describeField(key: string, value: unknown): string {
  if (key === 'mode' && typeof value === 'number') return `0${value.toString(8)}`;
  if (typeof value === 'string') return escapeName(value);
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function describe(rec: Record): string {
  const j = recordToJson(rec) as { [k: string]: unknown };
  const fields = Object.entries(j)
    .filter(([k]) => k !== 'seq' && k !== 'op' && k !== 't')
    .map(([k, v]) => `${k}=${describeField(k, v)}`);
  return `${rec.seq}\t${rec.op}\t${fields.join(' ')}`;
}

export function registerJournal(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  const journal = program.command('journal').description('inspect or replay a volume\'s journal');
  journal
    .command('dump')
    .description('list the records of a journal in order')
    .requiredOption('--state <dir>', 'the volume\'s state dir')
    .option('--json', 'one JSON object per line')
    .option('--from <seq>', 'first sequence number', parseSeq('--from'))
    .option('--to <seq>', 'last sequence number', parseSeq('--to'))
    .action((opts: { state: string; json?: boolean; from?: number; to?: number }) =>
      run(async () => {
        const stateDir = requireJournal(opts.state);
        for (const rec of readJournal(stateDir, { fromSeq: opts.from, toSeq: opts.to })) {
          process.stdout.write(opts.json ? `${JSON.stringify(recordToJson(rec))}\n` : `${describe(rec)}\n`);
        }
      }),
    );
  journal
    .command('replay')
    .description('apply the journal to a copy of the tree as it was when the volume was first mounted')
    .requiredOption('--state <dir>', 'the volume\'s state dir')
    .requiredOption('--onto <dir>', 'the copy to apply the records to')
    .option('--to-seq <seq>', 'stop after this sequence number', parseSeq('--to-seq'))
    .option('--volume <name>', 'the volume to replay, when the journal is a group\'s')
    .action((opts: { state: string; onto: string; toSeq?: number; volume?: string }) =>
      run(async () => {
        const stateDir = requireJournal(opts.state);
        const onto = resolve(opts.onto);
        if (!existsSync(onto) || !lstatSync(onto).isDirectory()) throw new EpochfsError('ENOBACKING', `replay target ${onto} is not a directory`);
        const r = replayJournal(stateDir, onto, { toSeq: opts.toSeq, volume: opts.volume });
        process.stderr.write(`epochfs: replayed ${r.applied} records (last seq ${r.lastSeq}) onto ${onto}\n`);
      }),
    );
}
