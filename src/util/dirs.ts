// mkdir -p that reports the real reason: Node's recursive mkdir answers ENOENT where the kernel
// said EROFS (it stats the path after any unexpected error), which would tell a user with a
// read-only disk that their directory "does not exist".
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export function makeDirs(path: string, mode = 0o777): void {
  try {
    mkdirSync(path, { recursive: true, mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(dirname(path))) throw err;
    mkdirSync(path, { mode }); // the parent exists: this one fails with the kernel's own errno, if at all
  }
}
