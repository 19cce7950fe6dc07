// epochfs: WRITE journaled and applied in C on the FUSE threads (native/fastwrite.c), compiled into
// the patched fuse-native binding. See docs/ARCHITECTURE.md, "Writes in C".
#ifndef EPOCHFS_FASTWRITE_H
#define EPOCHFS_FASTWRITE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>
#include <node_api.h>

// fastwrite's answer when it did nothing and the request goes to the JS handler
#define FASTWRITE_FALLBACK INT_MIN

typedef struct fw_journal fw_journal;

// The group journal shared with JS, from the ArrayBuffer fastwrite_journal made (NULL if it is not one).
fw_journal *fastwrite_journal_of(napi_env env, napi_value ab);

// Journals and applies one write of volume `vol` to backing fd `fd`: the bytes written or -errno,
// or FASTWRITE_FALLBACK when it must be handled in JS (nothing was written then). `kill_suidgid`:
// the request asks the filesystem to clear setuid/setgid first (JS does, for a file that has them).
int fastwrite(fw_journal *j, const char *vol, const char *path, const char *buf, size_t len, off_t offset, int fd, int kill_suidgid);

// Journals and applies the unlink of `path` (relative to backing root fd `root_fd`): 0 or -errno,
// or FASTWRITE_FALLBACK when JS must (nothing was done then).
int fastunlink(fw_journal *j, const char *vol, int root_fd, const char *path);

// Answers an fsync of backing fd `fd` by the journal alone when BackingSync.journalOnly would (0 or
// -errno), or FASTWRITE_FALLBACK when JS must (nothing was done then).
int fastfsync(fw_journal *j, int fd, int datasync);

// Adds fastwrite_journal, _lock, _unlock, _fd, _name_changed, _fields to exports.
void fastwrite_exports(napi_env env, napi_value exports);

#endif
