// Builds the native parts after `npm ci`: applies patches/ to fuse-native (see docs/ARCHITECTURE.md,
// "The fuse-native patch"), rebuilds its addon from source against Debian's libfuse2, and builds
// native/ (syscalls Node lacks). Uses the node headers installed beside node when they are there,
// since no headers can be downloaded here.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`epochfs build: '${cmd} ${args.join(' ')}' failed in ${cwd}`);
    process.exit(r.status ?? 1);
  }
}

const gyp = process.env.npm_config_node_gyp ? [process.execPath, [process.env.npm_config_node_gyp]] : ['node-gyp', []];
run(join(root, 'node_modules', '.bin', 'patch-package'), [], root);
for (const dir of [join(root, 'node_modules', 'fuse-native'), join(root, 'native')]) {
  run(gyp[0], [...gyp[1], 'rebuild', ...nodedir], dir);
}
