// A caller may use paths of PATH_MAX - 1 bytes below the mount point, as on the backing fs itself,
// whatever the length of the backing dir's own path: the daemon resolves them relative to the
// backing dir (C: the *at calls on a root fd; JS: the serving thread works inside the backing dir).
// pjdfstest's */03.t and rename/02.t found the limit at PATH_MAX minus the backing dir's length.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, makeVolume, type TestVolume } from '../helpers/volume.js';
import { epochfsOk } from '../helpers/cli.js';
import { TEST_ENV } from '../helpers/env.js';

let vol: TestVolume | undefined;
afterEach(async () => {
  await dispose(vol);
  vol = undefined;
});

// Every operation on a path of exactly 4,095 bytes (relative to the current directory), then one
// byte more, which must be ENAMETOOLONG. Prints one line per operation: name, tab, result.
const SCRIPT = String.raw`
import os
parts, total = [], 0
while total + 256 < 4085: parts.append('d' * 255); total += 256
p = '/'.join(parts) + '/' + 'f' * (4095 - total)
assert len(p) == 4095
os.makedirs('/'.join(parts))
def t(name, f):
    try: f(); print(name + '\t' + 'ok')
    except OSError as e: print(name + '\t' + e.strerror)
t('create', lambda: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)))
t('write', lambda: (lambda fd: (os.write(fd, b'xyz'), os.close(fd)))(os.open(p, os.O_WRONLY)))
t('stat', lambda: os.stat(p))
t('chmod', lambda: os.chmod(p, 0o600))
t('chown', lambda: os.chown(p, 1, 1))
t('truncate', lambda: os.truncate(p, 2))
t('utime', lambda: os.utime(p, (1, 2)))
t('setxattr', lambda: os.setxattr(p, 'user.a', b'1'))
t('getxattr', lambda: os.getxattr(p, 'user.a'))
t('listxattr', lambda: os.listxattr(p))
t('rename', lambda: os.rename(p, p[:-1] + 'g'))
t('link', lambda: os.link(p[:-1] + 'g', p))
t('unlink', lambda: os.unlink(p[:-1] + 'g'))
t('symlink', lambda: os.symlink('t', p[:-1] + 's'))
t('readlink', lambda: os.readlink(p[:-1] + 's'))
t('mkdir', lambda: os.mkdir(p[:-1] + 'D'))
t('listdir', lambda: os.listdir(p[:-1] + 'D'))
t('rmdir', lambda: os.rmdir(p[:-1] + 'D'))
t('mkfifo', lambda: os.mkfifo(p[:-1] + 'F'))
t('one byte more', lambda: os.stat(p + 'x'))
`;

describe('long paths', () => {
  it('paths of PATH_MAX - 1 bytes below the mount point work, whatever the backing dir path', async () => {
    vol = makeVolume('longpaths');
    const deepBacking = join(vol.dir, ...Array(4).fill('a-parent-dir-with-a-long-name'), 'backing');
    mkdirSync(deepBacking, { recursive: true });
    await epochfsOk(['mount', deepBacking, vol.mnt, '--state', vol.state], { env: TEST_ENV });
    const out = execFileSync('python3', ['-c', SCRIPT], { cwd: vol.mnt, encoding: 'utf8' });
    const results = Object.fromEntries(out.trim().split('\n').map((l) => l.split('\t')));
    const ops = ['create', 'write', 'stat', 'chmod', 'chown', 'truncate', 'utime', 'setxattr', 'getxattr', 'listxattr', 'rename',
      'link', 'unlink', 'symlink', 'readlink', 'mkdir', 'listdir', 'rmdir', 'mkfifo'];
    expect(results).toEqual({ ...Object.fromEntries(ops.map((op) => [op, 'ok'])), 'one byte more': 'File name too long' });
  });
});
