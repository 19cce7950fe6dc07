// Which setuid/setgid bits a write or truncate clears, now that the kernel leaves it to the
// filesystem (FUSE_HANDLE_KILLPRIV_V2: docs/ARCHITECTURE.md, "Setuid, setgid and capabilities").
//
// The kernel flags a request only for a caller without CAP_FSETID; the rule for such a caller is
// the VFS's own (setattr_should_drop_suidgid), so the backing file ends as it would on ext4:
// setuid always goes; setgid goes if the file is group-executable (a setgid program), or if the
// caller is not in the file's group (setgid without group execute marks mandatory locking, and a
// group member may keep it). `security.capability` is not ours to drop: the kernel still asks for
// it on files it has not marked S_NOSEC and removes it with a REMOVEXATTR of its own.
import { readFileSync } from 'node:fs';

import type { FuseCaller } from '../native/fuse.js';

/** What the rule needs of the caller: its fsgid, and its pid (for its other groups). */
export type Caller = Pick<FuseCaller, 'gid' | 'pid'>;

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;

/** The supplementary groups of process `pid` (/proc/<pid>/status); none when it is gone. */
export function groupsOf(pid: number): number[] {
  if (pid <= 0) return [];
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').find((l) => l.startsWith('Groups:'));
    return line ? line.slice('Groups:'.length).trim().split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

/**
 * The mode a file of `mode` and group `fileGid` has after a write or truncate by `caller`, which
 * the kernel flagged (no CAP_FSETID); `mode` itself when nothing is to clear. The caller's groups
 * are read only when the answer depends on them.
 */
export function modeAfterKill(mode: number, fileGid: number, caller: Caller, groups: (pid: number) => number[] = groupsOf): number {
  let after = mode & ~S_ISUID;
  if (mode & S_ISGID) {
    const inGroup = (): boolean => caller.gid === fileGid || groups(caller.pid).includes(fileGid);
    if (mode & S_IXGRP || !inGroup()) after &= ~S_ISGID;
  }
  return after;
}
