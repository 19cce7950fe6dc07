// epochfs journal dump: names with control bytes or non-printable characters are escaped as \xNN
// (a terminal is never sent raw control sequences), modes are octal; --json is unchanged.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Journal } from '../../src/journal/journal.js';
import { epochfsOk } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';

describe('epochfs journal dump', () => {
  it('escapes names and prints modes in octal', async () => {
    const state = join(tempDir('dump'), 'state');
    const { journal } = await Journal.open(state);
    const evil = '/a\x1b[2Jb\x07\u202etxt.exe\\\n\ufffd\udcff';
    journal.append({ op: 'create', t: 1n, vol: 'v', path: evil, mode: 0o100644, uid: 0, gid: 0 });
    journal.append({ op: 'rename', t: 2n, vol: 'v', path: evil, dest: '/plain name' });
    journal.append({ op: 'chmod', t: 3n, vol: 'v', path: '/plain name', mode: 0o4755 });
    await journal.close(true);
    const lines = (await epochfsOk(['journal', 'dump', '--state', state])).trimEnd().split('\n');
    expect(lines).toEqual([
      '1\tcreate\tvol=v path=/a\\x1b[2Jb\\x07\\xe2\\x80\\xaetxt.exe\\x5c\\x0a\\xef\\xbf\\xbd\\xff mode=0100644 uid=0 gid=0',
      '2\trename\tvol=v path=/a\\x1b[2Jb\\x07\\xe2\\x80\\xaetxt.exe\\x5c\\x0a\\xef\\xbf\\xbd\\xff dest=/plain name',
      '3\tchmod\tvol=v path=/plain name mode=04755',
    ]);
    const json = (await epochfsOk(['journal', 'dump', '--state', state, '--json'])).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(json[0]).toMatchObject({ seq: 1, op: 'create', path: evil, mode: 0o100644 });
    expect(json[2]).toMatchObject({ op: 'chmod', mode: 0o4755 });
  });
});
