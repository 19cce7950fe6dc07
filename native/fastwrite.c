// epochfs: WRITE and UNLINK journaled and applied in C on the FUSE threads, and FSYNC answered by
// the journal alone, without the hop to the JS thread (docs/ARCHITECTURE.md, "Writes in C").
// Compiled into the patched fuse-native binding.
//
// The group journal's append state (next seq, segment fd and offset, counters) lives in a struct
// that JS allocated as an ArrayBuffer and reads as a Float64Array. One mutex in it orders every
// append: a write here holds it from its journal record through the backing pwrite, and JS holds
// it from a record's begin through its apply (Journal.exclusive). So the journal order is still the
// order in which operations took effect, and a barrier JS appends is an exact cut.
//
// A write is left to JS (FASTWRITE_FALLBACK, nothing done) whenever the simple case does not hold:
// JS has not armed the journal (degraded, held by a resync, closed), the fd is not registered (an
// O_SYNC file), the path or volume name would need JSON escaping, the record would pass the
// segment's limit (JS rotates; it also prepares the spare segment) or the byte budget (JS checks
// --buffer-max), the journal write itself failed (JS degrades the group), or the write must first
// clear setuid/setgid bits the file has (JS journals that chmod, then the write: docs/ARCHITECTURE.md,
// "Setuid, setgid and capabilities"). The record is
// byte-for-byte the frame src/journal/record.ts writes for a write (format 2).
#include "fastwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

// Fields JS reads and sets (as doubles: exact up to 2^53), by the names fastwrite_fields exports.
#define FW_FIELDS(X) \
  X(nextSeq) X(offset) X(limit) X(budget) X(records) X(bytes) X(fd) X(preallocated) \
  X(armed) X(held) X(broken) X(writes) X(fallbacks) \
  X(durable) X(rotations) X(rotationsSynced) X(synced) X(required) X(syncFailed) X(syncErrno) \
  X(fsyncs) X(fsyncFallbacks) X(syncCalls) X(faultSyncAt) X(unlinks) X(unlinkFallbacks) \
  X(refWindow) X(refMin) X(unread) X(refAt) X(journalOnlyAt) X(refWrites) X(refEntries)
#define FW_ENUM(name) FW_##name,
enum { FW_FIELDS(FW_ENUM) FW_NFIELDS };
// The operation clock (src/util/clock.ts): JS's anchors, and the last time given to a record here.
enum { FW_ANCHOR_WALL, FW_ANCHOR_MONO, FW_LAST_T, FW_NCLOCK };

#define FRAME_HEADER 8 // u32 body length, u32 crc32 of the body
#define BODY_FIXED 13  // u64 seq, u8 opcode, u32 meta length
#define OP_WRITE 0  // opcodes of src/journal/record.ts (OPCODES)
#define OP_UNLINK 7
#define OP_WREF 20
#define OP_PRE 21
#define META_MAX (PATH_MAX + 512)
#define FH_MAX 272     // hex of a u32 type and up to 128 bytes, and its NUL
#define REF_KEY_MAX (FH_MAX + 256) // "<volume>:<handle>": handles are unique within one filesystem only

// A range of a file written by reference whose bytes the shipper has not read yet (see "refs").
typedef struct {
  char key[REF_KEY_MAX]; // "<volume>:<handle>"
  double off, end; // [off, end)
  double seq;      // the last wref record in it
} fw_ref;

struct fw_journal {
  double f[FW_NFIELDS];
  uint64_t clock[FW_NCLOCK];
  fw_ref *refs;            // the unread references (under mu); f[unread] is the sum of their lengths
  int nrefs, caprefs;
  pthread_mutex_t mu;      // the append mutex (f[] is written under it)
  pthread_mutex_t sync_mu; // the group commit of fsyncs served here: one fdatasync at a time
  pthread_cond_t synced_cv;
  int syncing;
};


// Registered backing fds: its file handle in hex ("" when it has none), and the record at which
// the name of its file last changed (BackingSync.nameChanged; -1: its fsyncs always go to JS).
// Higher fds go to JS.
#define FW_FDS 65536
typedef struct { char *handle; double name_changed; } fw_fd_entry;
static fw_fd_entry fds[FW_FDS];
static pthread_mutex_t fd_mu = PTHREAD_MUTEX_INITIALIZER;

static int handle_of(int fd, char *out) {
  if (fd < 0 || fd >= FW_FDS) return 0;
  pthread_mutex_lock(&fd_mu);
  int known = fds[fd].handle != NULL;
  if (known) strcpy(out, fds[fd].handle);
  pthread_mutex_unlock(&fd_mu);
  return known;
}

static int name_changed_of(int fd, double *out) {
  if (fd < 0 || fd >= FW_FDS) return 0;
  pthread_mutex_lock(&fd_mu);
  int known = fds[fd].handle != NULL && fds[fd].name_changed >= 0;
  *out = fds[fd].name_changed;
  pthread_mutex_unlock(&fd_mu);
  return known;
}

// Text JSON.stringify leaves as it is (so it can go into the meta between quotes unchanged).
static int plain_json(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char) *s;
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return 0;
  }
  return 1;
}

static uint64_t now_ns(fw_journal *j) {
  struct timespec m;
  clock_gettime(CLOCK_MONOTONIC, &m); // process.hrtime's clock (libuv's uv_hrtime)
  uint64_t t = j->clock[FW_ANCHOR_WALL] + ((uint64_t) m.tv_sec * 1000000000u + m.tv_nsec - j->clock[FW_ANCHOR_MONO]);
  if (t <= j->clock[FW_LAST_T]) t = j->clock[FW_LAST_T] + 1;
  j->clock[FW_LAST_T] = t;
  return t;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char) (v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char) (v >> (8 * i));
}

static const unsigned char zeros[65536];

// Drops `written` bytes appended at `at` as Journal.rollback does: zeros over them in a
// preallocated segment (zeros end a segment), else the file ends at `at` again.
static void void_at(fw_journal *j, off_t at, size_t written) {
  int fd = (int) j->f[FW_fd];
  if (j->f[FW_preallocated] == 0) {
    if (ftruncate(fd, at) != 0) j->f[FW_broken] = 1;
    return;
  }
  for (size_t done = 0; done < written;) {
    size_t n = written - done < sizeof(zeros) ? written - done : sizeof(zeros);
    ssize_t w = pwrite(fd, zeros, n, at + done);
    if (w <= 0) { j->f[FW_broken] = 1; return; }
    done += w;
  }
}

// Appends the frame of a record at the journal's offset; its length, or 0 if it could not be
// written whole (what was written is voided again).
static size_t append_record(fw_journal *j, uint64_t seq, int opcode, const char *meta, size_t meta_len, const char *data, size_t len) {
  unsigned char fixed[FRAME_HEADER + BODY_FIXED];
  put_u64(fixed + FRAME_HEADER, seq);
  fixed[FRAME_HEADER + 8] = (unsigned char) opcode;
  put_u32(fixed + FRAME_HEADER + 9, (uint32_t) meta_len);
  uLong crc = crc32(0L, fixed + FRAME_HEADER, BODY_FIXED);
  crc = crc32(crc, (const Bytef *) meta, (uInt) meta_len);
  if (len > 0) crc = crc32(crc, (const Bytef *) data, (uInt) len); // (a NULL buffer would restart the crc)
  put_u32(fixed, (uint32_t) (BODY_FIXED + meta_len + len));
  put_u32(fixed + 4, (uint32_t) crc);
  struct iovec iov[3] = { { fixed, sizeof(fixed) }, { (void *) meta, meta_len }, { (void *) data, len } };
  size_t frame = sizeof(fixed) + meta_len + len;
  off_t at = (off_t) j->f[FW_offset];
  ssize_t n = pwritev((int) j->f[FW_fd], iov, 3, at);
  if (n == (ssize_t) frame) return frame;
  if (n > 0) void_at(j, at, n);
  return 0;
}

// A record of `frame` bytes appended at `at` took effect: the journal's state moves past it.
static void appended(fw_journal *j, uint64_t seq, off_t at, size_t frame) {
  j->f[FW_nextSeq] = (double) (seq + 1);
  j->f[FW_offset] = (double) (at + frame);
  j->f[FW_records]++;
  j->f[FW_bytes] += (double) frame;
}

// Does JS let C journal now (normal mode, no resync holding mutations, nothing left unjournaled)?
static int journaling(fw_journal *j) {
  return j->f[FW_armed] != 0 && j->f[FW_held] == 0 && j->f[FW_broken] == 0;
}

// --- refs: large writes journaled by reference (docs/ARCHITECTURE.md, "Large writes by reference")
//
// A write of at least refMin bytes is journaled as a `wref` record (path, range, CRC-32, handle)
// without its data, which only the backing file then holds, while the unread bytes stay within
// refWindow (0: never; JS sets it when the group ships to a store). Its range is kept here as
// unread until the shipper has read it (JS calls fastwrite_refs_read with the shipper's progress).
// An operation that would change unread bytes goes to JS, which first journals their pre-images
// (`pre` records, taken out of the table with fastwrite_refs_take), so the shipper can still read
// the bytes as they were written. Durability: a write by reference is made only while no fsync since
// the last backing sync point was answered by the journal alone (journalOnlyAt), and after one
// (refAt) no fsync is until the next sync point: so the redo after a power loss never needs the
// files written by reference, and leaves them as they are (src/journal/redo.ts).

#define REF_MERGE_MAX (8.0 * 1024 * 1024) // a range grows by contiguous writes up to this much

static int ref_overlaps(const fw_ref *r, const char *key, double off, double end) {
  return r->off < end && off < r->end && strcmp(r->key, key) == 0;
}

// Does any unread range of file `fh` intersect [off, end)?
static int refs_overlap(fw_journal *j, const char *fh, double off, double end) {
  for (int i = 0; i < j->nrefs; i++) if (ref_overlaps(&j->refs[i], fh, off, end)) return 1;
  return 0;
}

static void refs_remove_at(fw_journal *j, int i) {
  j->refs[i] = j->refs[--j->nrefs];
}

static int refs_push(fw_journal *j, const char *fh, double off, double end, double seq) {
  if (j->nrefs == j->caprefs) {
    int cap = j->caprefs ? 2 * j->caprefs : 64;
    fw_ref *grown = realloc(j->refs, (size_t) cap * sizeof(fw_ref));
    if (grown == NULL) return 0;
    j->refs = grown;
    j->caprefs = cap;
  }
  fw_ref *r = &j->refs[j->nrefs++];
  strcpy(r->key, fh);
  r->off = off;
  r->end = end;
  r->seq = seq;
  return 1;
}

// Range [off, end) of `fh` was written by record `seq`: unread from now on. 0 if it could not be kept.
static int refs_add(fw_journal *j, const char *fh, double off, double end, double seq) {
  for (int i = j->nrefs - 1; i >= 0 && i >= j->nrefs - 4; i--) {
    fw_ref *r = &j->refs[i];
    if (r->end == off && r->end - r->off < REF_MERGE_MAX && strcmp(r->key, fh) == 0) {
      r->end = end;
      r->seq = seq;
      j->f[FW_unread] += end - off;
      return 1;
    }
  }
  if (!refs_push(j, fh, off, end, seq)) return 0;
  j->f[FW_unread] += end - off;
  j->f[FW_refEntries] = j->nrefs;
  return 1;
}

// Takes the unread parts of [off, end) of `fh` out of the table: at most `max` pieces into
// out[2i], out[2i+1]; returns how many (the caller journals their pre-images).
static int refs_take(fw_journal *j, const char *fh, double off, double end, double *out, int max) {
  int n = 0;
  for (int i = 0; i < j->nrefs && n < max;) {
    fw_ref *r = &j->refs[i];
    if (!ref_overlaps(r, fh, off, end)) {
      i++;
      continue;
    }
    double from = r->off > off ? r->off : off, to = r->end < end ? r->end : end;
    out[2 * n] = from;
    out[2 * n + 1] = to;
    n++;
    j->f[FW_unread] -= to - from;
    double right = r->end;
    if (from > r->off && to < right) {
      // the middle goes: the right part becomes a range of its own
      r->end = from;
      if (!refs_push(j, fh, to, right, j->refs[i].seq)) j->f[FW_unread] -= right - to; // (never read back: its captures are lost, the CRC says so)
      i++;
    } else if (from > r->off) {
      r->end = from;
      i++;
    } else if (to < right) {
      r->off = to;
      i++;
    } else refs_remove_at(j, i);
  }
  j->f[FW_refEntries] = j->nrefs;
  return n;
}

// The shipper has read every reference up to record `seq`.
static void refs_read(fw_journal *j, double seq) {
  for (int i = 0; i < j->nrefs;) {
    if (j->refs[i].seq <= seq) {
      j->f[FW_unread] -= j->refs[i].end - j->refs[i].off;
      refs_remove_at(j, i);
    } else i++;
  }
  if (j->nrefs == 0) j->f[FW_unread] = 0;
  j->f[FW_refEntries] = j->nrefs;
}

// May this write be journaled by reference (with the journal locked)?
static int by_reference(fw_journal *j, const char *fh, size_t len) {
  double synced = j->f[FW_synced];
  return fh[0] != 0 && j->f[FW_refWindow] > 0 && (double) len >= j->f[FW_refMin] &&
         j->f[FW_unread] + (double) len <= j->f[FW_refWindow] && j->f[FW_journalOnlyAt] <= synced;
}

// The record of an operation C is about to apply, with the journal locked: its frame's length, or
// 0 when JS must serve the operation (the segment's limit, the byte budget, a failed append, which
// JS then meets itself and degrades on). Sets *seq and *at for appended() or void_at().
static size_t begin_record(fw_journal *j, int opcode, const char *meta, int meta_len, const char *data, size_t len, uint64_t *seq, off_t *at) {
  if (meta_len < 0 || meta_len >= META_MAX) return 0;
  size_t frame = FRAME_HEADER + BODY_FIXED + meta_len + len;
  if (j->f[FW_offset] + frame > j->f[FW_limit] || j->f[FW_bytes] + frame > j->f[FW_budget]) return 0;
  *seq = (uint64_t) j->f[FW_nextSeq];
  *at = (off_t) j->f[FW_offset];
  return append_record(j, *seq, opcode, meta, meta_len, data, len);
}

// UTIME_OMIT for the atime, `t` for the mtime (stampTimes in src/journal/apply.ts)
static void mtime_at(uint64_t t, struct timespec times[2]) {
  times[0] = (struct timespec) { 0, UTIME_OMIT };
  times[1] = (struct timespec) { (time_t) (t / 1000000000u), (long) (t % 1000000000u) };
}

// Must the write first clear setuid/setgid bits of its file? Asked only when the kernel flagged the
// request (a caller without CAP_FSETID): one fstat, local, instead of the kernel's FUSE round trip.
// Under the journal's lock, so no chmod can come between the check and the write.
static int has_privileges_to_drop(int fd) {
  struct stat st;
  return fstat(fd, &st) != 0 || (st.st_mode & (S_ISUID | S_ISGID)) != 0;
}

static int write_meta(char *meta, uint64_t t, const char *path, off_t offset, const char *fh, const char *vol) {
  return snprintf(meta, META_MAX, "{\"t\":\"%" PRIu64 "\",\"path\":\"%s\",\"offset\":%" PRId64 "%s%s%s,\"vol\":\"%s\"}",
                  t, path, (int64_t) offset, fh[0] ? ",\"fh\":\"" : "", fh, fh[0] ? "\"" : "", vol);
}

// Voids the frame of record `seq` at `at` and journals the write as a data record of its first
// `took` bytes instead (same seq: nothing was published yet): the new frame's length, or 0 (then
// `broken` is set: the write is in effect but not journaled, and JS degrades the group).
static size_t as_data_record(fw_journal *j, uint64_t seq, off_t at, size_t frame, uint64_t t, const char *path, off_t offset, const char *fh, const char *vol, const char *buf, size_t took) {
  char meta[META_MAX];
  void_at(j, at, frame);
  int meta_len = write_meta(meta, t, path, offset, fh, vol);
  size_t whole = FRAME_HEADER + BODY_FIXED + meta_len + took;
  size_t written = at + (off_t) whole <= (off_t) j->f[FW_limit] ? append_record(j, seq, OP_WRITE, meta, meta_len, buf, took) : 0;
  if (written == 0) j->f[FW_broken] = 1;
  return written;
}

// The write, with the journal locked: the bytes written, -errno, or FASTWRITE_FALLBACK.
static int locked_write(fw_journal *j, const char *vol, const char *path, const char *fh, const char *buf, size_t len, off_t offset, int fd, int kill_suidgid) {
  if (!journaling(j) || (kill_suidgid && has_privileges_to_drop(fd))) return FASTWRITE_FALLBACK;
  int by_ref = by_reference(j, fh, len);
  char key[REF_KEY_MAX]; // the file in the table of unread references, needed only when it is used
  if (j->nrefs > 0 || by_ref) snprintf(key, sizeof(key), "%s:%s", vol, fh);
  // bytes the shipper has not read yet: JS journals their pre-images first
  if (j->nrefs > 0 && refs_overlap(j, key, (double) offset, (double) offset + (double) len)) return FASTWRITE_FALLBACK;
  uint64_t t = now_ns(j), seq;
  off_t at;
  char meta[META_MAX];
  int meta_len;
  size_t frame;
  if (by_ref) {
    uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *) buf, (uInt) len);
    meta_len = snprintf(meta, sizeof(meta), "{\"t\":\"%" PRIu64 "\",\"path\":\"%s\",\"offset\":%" PRId64 ",\"length\":%zu,\"crc\":%lu,\"fh\":\"%s\",\"vol\":\"%s\"}",
                        t, path, (int64_t) offset, len, (unsigned long) crc, fh, vol);
    frame = begin_record(j, OP_WREF, meta, meta_len, NULL, 0, &seq, &at);
  } else {
    meta_len = write_meta(meta, t, path, offset, fh, vol);
    frame = begin_record(j, OP_WRITE, meta, meta_len, buf, len, &seq, &at);
  }
  if (frame == 0) return FASTWRITE_FALLBACK;
  ssize_t n = pwrite(fd, buf, len, offset);
  int err = n < 0 ? errno : ENOSPC; // nothing written and no error: a full disk, as JS's ShortWrite
  size_t took = n < 0 ? 0 : (size_t) n;
  if (took < len) {
    // Journal the part that took effect (a full backing disk), with its data. None may have, and
    // yet the attempt changed the mtime (the kernel sets it before it copies): the record of no
    // bytes sets it to t here and in replay alike.
    frame = as_data_record(j, seq, at, frame, t, path, offset, fh, vol, buf, took);
    by_ref = 0;
  }
  struct timespec times[2];
  mtime_at(t, times);
  if (frame > 0 && futimens(fd, times) != 0) {
    int e = errno;
    void_at(j, at, frame);
    return -e;
  }
  if (frame > 0 && by_ref && !refs_add(j, key, (double) offset, (double) offset + (double) len, (double) seq)) {
    frame = as_data_record(j, seq, at, frame, t, path, offset, fh, vol, buf, len); // no memory for the table
    by_ref = 0;
  }
  if (frame > 0) {
    appended(j, seq, at, frame);
    j->f[FW_writes]++;
    if (by_ref) {
      j->f[FW_refAt] = (double) seq;
      j->f[FW_refWrites]++;
    }
  }
  return took == 0 && len > 0 ? -err : (int) took;
}

// --- UNLINK: journaled and applied as apply.ts does (unlink, then the parent's mtime set to t)

// "/a/b" -> "a/b"; and its parent, relative to the backing root ("a", or "." for "/b")
static int parent_of(const char *rel, char *parent, size_t size) {
  const char *slash = strrchr(rel, '/');
  size_t n = slash == NULL ? 0 : (size_t) (slash - rel);
  if (n + 2 > size) return 0;
  if (n == 0) strcpy(parent, ".");
  else {
    memcpy(parent, rel, n);
    parent[n] = 0;
  }
  return 1;
}

static int locked_unlink(fw_journal *j, const char *vol, int root_fd, const char *path) {
  // the file may hold bytes the shipper has not read: JS journals their pre-images first
  if (!journaling(j) || j->nrefs > 0) return FASTWRITE_FALLBACK;
  const char *rel = path + 1;
  char parent[PATH_MAX];
  if (rel[0] == 0 || !parent_of(rel, parent, sizeof(parent))) return FASTWRITE_FALLBACK;
  uint64_t t = now_ns(j), seq;
  off_t at;
  char meta[META_MAX];
  int meta_len = snprintf(meta, sizeof(meta), "{\"t\":\"%" PRIu64 "\",\"path\":\"%s\",\"vol\":\"%s\"}", t, path, vol);
  size_t frame = begin_record(j, OP_UNLINK, meta, meta_len, NULL, 0, &seq, &at);
  if (frame == 0) return FASTWRITE_FALLBACK;
  struct timespec times[2];
  mtime_at(t, times);
  if (unlinkat(root_fd, rel, 0) != 0 || utimensat(root_fd, parent, times, AT_SYMLINK_NOFOLLOW) != 0) {
    int e = errno;
    void_at(j, at, frame); // as a rollback in JS: the journal holds only what took effect
    return -e;
  }
  appended(j, seq, at, frame);
  j->f[FW_unlinks]++;
  return 0;
}

int fastunlink(fw_journal *j, const char *vol, int root_fd, const char *path) {
  if (j == NULL || path[0] != '/' || !plain_json(path) || !plain_json(vol)) return FASTWRITE_FALLBACK;
  pthread_mutex_lock(&j->mu);
  int r = locked_unlink(j, vol, root_fd, path);
  if (r == FASTWRITE_FALLBACK) j->f[FW_unlinkFallbacks]++;
  pthread_mutex_unlock(&j->mu);
  return r;
}

int fastwrite(fw_journal *j, const char *vol, const char *path, const char *buf, size_t len, off_t offset, int fd, int kill_suidgid) {
  char fh[FH_MAX];
  // offsets past 2^53 would not survive the meta's JSON number exactly: JS journals those as it can
  if (j == NULL || len > (1u << 24) || offset > (1LL << 53) || !handle_of(fd, fh)) return FASTWRITE_FALLBACK;
  if (!plain_json(path) || !plain_json(vol)) return FASTWRITE_FALLBACK;
  pthread_mutex_lock(&j->mu);
  int r = locked_write(j, vol, path, fh, buf, len, offset, fd, kill_suidgid);
  if (r == FASTWRITE_FALLBACK) j->f[FW_fallbacks]++;
  pthread_mutex_unlock(&j->mu);
  return r;
}

// --- FSYNC: the journal alone (docs/ARCHITECTURE.md, "One durable write per fsync"), here

static double load(const double *v) {
  double out;
  __atomic_load(v, &out, __ATOMIC_ACQUIRE);
  return out;
}

// Makes the journal durable up to `target` by group commit: one thread syncs the current segment
// (a dup of C's own fd of it, so JS may close that meanwhile) up to the newest record, the others wait for it.
// 0, -errno of a failed fdatasync (the journal is then not trusted: syncFailed), or FALLBACK when
// JS must sync (a rotated segment or the journal dir not synced yet, a failure already seen).
static int commit(fw_journal *j, double target) {
  int r = 0;
  pthread_mutex_lock(&j->sync_mu);
  while (r == 0 && load(&j->f[FW_durable]) < target) {
    if (j->syncing) {
      pthread_cond_wait(&j->synced_cv, &j->sync_mu);
      continue;
    }
    j->syncing = 1;
    pthread_mutex_unlock(&j->sync_mu);
    pthread_mutex_lock(&j->mu);
    int ok = j->f[FW_rotations] == j->f[FW_rotationsSynced] && j->f[FW_syncFailed] == 0;
    double upto = j->f[FW_nextSeq] - 1;
    int seg = ok ? dup((int) j->f[FW_fd]) : -1;
    // a test's fault (EPOCHFS_FAULT_JOURNAL_SYNC_IN_C): the n-th fdatasync here fails with EIO
    int fault = seg >= 0 && j->f[FW_faultSyncAt] > 0 && ++j->f[FW_syncCalls] == j->f[FW_faultSyncAt];
    pthread_mutex_unlock(&j->mu);
    int e = seg < 0 ? -1 : 0;
    if (seg >= 0) {
      if (fault) e = EIO;
      else if (fdatasync(seg) != 0) e = errno;
      close(seg);
    }
    pthread_mutex_lock(&j->mu);
    if (e == 0 && j->f[FW_syncFailed] != 0) e = -1; // JS's round failed meanwhile: nothing is promised now
    if (e == 0 && upto > j->f[FW_durable]) __atomic_store(&j->f[FW_durable], &upto, __ATOMIC_RELEASE);
    if (e > 0) {
      // Linux reports a writeback error once per open file: JS learns it here (Journal.checkSyncInC)
      j->f[FW_syncFailed] = 1;
      j->f[FW_syncErrno] = e;
      j->f[FW_armed] = 0;
    }
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&j->sync_mu);
    j->syncing = 0;
    pthread_cond_broadcast(&j->synced_cv);
    if (e != 0) r = e < 0 ? FASTWRITE_FALLBACK : -e;
  }
  pthread_mutex_unlock(&j->sync_mu);
  return r;
}

int fastfsync(fw_journal *j, int fd, int datasync) {
  double name_changed;
  if (j == NULL || !name_changed_of(fd, &name_changed)) return FASTWRITE_FALLBACK;
  pthread_mutex_lock(&j->mu);
  // BackingSync.journalOnly: the redo after a power loss would bring the file's writes back
  double synced = j->f[FW_synced];
  // and no write by reference since the sync point, whose bytes only the backing files hold ("refs")
  int ok = journaling(j) && j->f[FW_syncFailed] == 0 &&
           synced >= 0 && synced >= j->f[FW_required] && synced >= name_changed && synced >= j->f[FW_refAt];
  double target = j->f[FW_nextSeq] - 1;
  if (ok && target > j->f[FW_journalOnlyAt]) j->f[FW_journalOnlyAt] = target; // no write by reference until a sync point passes it
  if (!ok) j->f[FW_fsyncFallbacks]++;
  pthread_mutex_unlock(&j->mu);
  if (!ok) return FASTWRITE_FALLBACK;
  int r = commit(j, target);
  if (r == FASTWRITE_FALLBACK) return r;
  if (r < 0) {
    // as JS: a journal that fails to sync falls back on the file's own sync
    r = (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : -errno;
  }
  pthread_mutex_lock(&j->mu);
  j->f[FW_fsyncs]++;
  pthread_mutex_unlock(&j->mu);
  return r;
}

fw_journal *fastwrite_journal_of(napi_env env, napi_value ab) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, ab, &is_ab) != napi_ok || !is_ab) return NULL;
  void *data;
  size_t size;
  if (napi_get_arraybuffer_info(env, ab, &data, &size) != napi_ok || size != sizeof(fw_journal)) return NULL;
  return (fw_journal *) data;
}

// --- N-API: what src/native/fastwrite.ts calls

static napi_value arg_journal(napi_env env, napi_callback_info info, fw_journal **j) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  *j = argc < 1 ? NULL : fastwrite_journal_of(env, argv[0]);
  if (*j == NULL) napi_throw_type_error(env, NULL, "not a fastwrite journal");
  return NULL;
}

// fastwrite_journal(): a new ArrayBuffer holding a zeroed journal state and its mutex (V8 never
// moves an ArrayBuffer's memory, so the FUSE threads may keep its address).
static napi_value fw_new(napi_env env, napi_callback_info info) {
  void *data;
  napi_value ab;
  if (napi_create_arraybuffer(env, sizeof(fw_journal), &data, &ab) != napi_ok) return NULL;
  fw_journal *j = (fw_journal *) data;
  memset(j, 0, sizeof(*j));
  pthread_mutex_init(&j->mu, NULL);
  pthread_mutex_init(&j->sync_mu, NULL);
  pthread_cond_init(&j->synced_cv, NULL);
  return ab;
}

static napi_value fw_lock(napi_env env, napi_callback_info info) {
  fw_journal *j;
  arg_journal(env, info, &j);
  if (j) pthread_mutex_lock(&j->mu);
  return NULL;
}

static napi_value fw_unlock(napi_env env, napi_callback_info info) {
  fw_journal *j;
  arg_journal(env, info, &j);
  if (j) pthread_mutex_unlock(&j->mu);
  return NULL;
}

// fastwrite_fd(fd, handle, nameChanged): writes to backing fd `fd` may be served here, journaled
// with `handle` (hex, "" for none), and its fsyncs once the backing sync point passes record
// `nameChanged` (-1: never); fastwrite_fd(fd, null): no longer (before the fd is closed).
static napi_value fw_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  double name_changed = -1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "fastwrite_fd(fd, handle, nameChanged)");
    return NULL;
  }
  if (argc >= 3) napi_get_value_double(env, argv[2], &name_changed);
  if (fd < 0 || fd >= FW_FDS) return NULL;
  char *handle = NULL;
  napi_valuetype type;
  napi_typeof(env, argv[1], &type);
  if (type == napi_string) {
    char hex[FH_MAX];
    size_t n;
    napi_get_value_string_utf8(env, argv[1], hex, sizeof(hex), &n);
    // not a handle: JS serves this fd (and no earlier registration of the number may stay)
    if (n < sizeof(hex) - 1 && plain_json(hex)) handle = strdup(hex);
  }
  pthread_mutex_lock(&fd_mu);
  char *old = fds[fd].handle;
  fds[fd].handle = handle;
  fds[fd].name_changed = handle ? name_changed : -1;
  pthread_mutex_unlock(&fd_mu);
  free(old);
  return NULL;
}

// fastwrite_name_changed(fd, seq): the name of fd's file changed at record `seq` (a rename or link)
static napi_value fw_name_changed(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  double seq;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &seq) != napi_ok) {
    napi_throw_type_error(env, NULL, "fastwrite_name_changed(fd, seq)");
    return NULL;
  }
  if (fd < 0 || fd >= FW_FDS) return NULL;
  pthread_mutex_lock(&fd_mu);
  if (fds[fd].handle != NULL && fds[fd].name_changed >= 0 && seq > fds[fd].name_changed) fds[fd].name_changed = seq;
  pthread_mutex_unlock(&fd_mu);
  return NULL;
}

// --- refs, for JS: each called holding the journal's lock (Journal.exclusive)

static fw_journal *refs_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, char *fh) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_journal *j = argc < want ? NULL : fastwrite_journal_of(env, argv[0]);
  if (j == NULL) {
    napi_throw_type_error(env, NULL, "fastwrite refs: bad arguments");
    return NULL;
  }
  if (fh != NULL) {
    size_t n;
    if (napi_get_value_string_utf8(env, argv[1], fh, REF_KEY_MAX, &n) != napi_ok || n >= REF_KEY_MAX - 1) {
      napi_throw_type_error(env, NULL, "fastwrite refs: not a volume and file handle");
      return NULL;
    }
  }
  return j;
}

static double arg_double(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

// fastwrite_refs_take(journal, key, from, to): [from0, to0, from1, to1, ...], the unread parts of
// [from, to) of file key ("<volume>:<handle>"), now out of the table (their pre-images are the caller's to journal)
static napi_value fw_refs_take(napi_env env, napi_callback_info info) {
  napi_value argv[4], out, v;
  char fh[REF_KEY_MAX];
  fw_journal *j = refs_args(env, info, 4, argv, fh);
  if (j == NULL) return NULL;
  double pieces[2 * 64];
  napi_create_array(env, &out);
  uint32_t k = 0;
  for (int n; (n = refs_take(j, fh, arg_double(env, argv[2]), arg_double(env, argv[3]), pieces, 64)) > 0;) {
    for (int i = 0; i < 2 * n; i++) {
      napi_create_double(env, pieces[i], &v);
      napi_set_element(env, out, k++, v);
    }
    if (n < 64) break;
  }
  return out;
}

// fastwrite_refs_add(journal, fh, from, to, seq): a reference of record seq is unread (a restart
// finds it in the journal)
static napi_value fw_refs_add(napi_env env, napi_callback_info info) {
  napi_value argv[5], ok;
  char fh[REF_KEY_MAX];
  fw_journal *j = refs_args(env, info, 5, argv, fh);
  if (j == NULL) return NULL;
  napi_get_boolean(env, refs_add(j, fh, arg_double(env, argv[2]), arg_double(env, argv[3]), arg_double(env, argv[4])) != 0, &ok);
  return ok;
}

// fastwrite_refs_unread(journal, fh): the bytes of file fh not read yet
static napi_value fw_refs_unread(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  char fh[REF_KEY_MAX];
  fw_journal *j = refs_args(env, info, 2, argv, fh);
  if (j == NULL) return NULL;
  double bytes = 0;
  for (int i = 0; i < j->nrefs; i++) if (strcmp(j->refs[i].key, fh) == 0) bytes += j->refs[i].end - j->refs[i].off;
  napi_create_double(env, bytes, &out);
  return out;
}

// fastwrite_refs_read(journal, seq): the shipper has read every reference up to record seq
// (Infinity: forget them all, as when the group degrades)
static napi_value fw_refs_read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fw_journal *j = refs_args(env, info, 2, argv, NULL);
  if (j != NULL) refs_read(j, arg_double(env, argv[1]));
  return NULL;
}

#define FW_NAME(name) #name,
static const char *field_names[] = { FW_FIELDS(FW_NAME) };

// fastwrite_fields: { fields: { nextSeq: 0, ... }, clockOffset, size }
static napi_value fw_fields(napi_env env) {
  napi_value out, fields, v;
  napi_create_object(env, &out);
  napi_create_object(env, &fields);
  for (int i = 0; i < FW_NFIELDS; i++) {
    napi_create_int32(env, i, &v);
    napi_set_named_property(env, fields, field_names[i], v);
  }
  napi_set_named_property(env, out, "fields", fields);
  napi_create_uint32(env, (uint32_t) offsetof(fw_journal, clock), &v);
  napi_set_named_property(env, out, "clockOffset", v);
  napi_create_uint32(env, (uint32_t) sizeof(fw_journal), &v);
  napi_set_named_property(env, out, "size", v);
  return out;
}

void fastwrite_exports(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } functions[] = {
    { "fastwrite_journal", fw_new },
    { "fastwrite_lock", fw_lock },
    { "fastwrite_unlock", fw_unlock },
    { "fastwrite_fd", fw_fd },
    { "fastwrite_name_changed", fw_name_changed },
    { "fastwrite_refs_take", fw_refs_take },
    { "fastwrite_refs_add", fw_refs_add },
    { "fastwrite_refs_unread", fw_refs_unread },
    { "fastwrite_refs_read", fw_refs_read },
  };
  for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  napi_set_named_property(env, exports, "fastwrite_fields", fw_fields(env));
}
