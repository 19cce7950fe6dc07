// Linux calls that Node's fs lacks, exposed synchronously for the FUSE serving thread and for replay:
// nanosecond utimensat with UTIME_NOW/UTIME_OMIT (fs.utimes rounds through a double of seconds),
// mknod (fifos, devices), the l*xattr family (no xattr API in Node), the byte-exact codec for
// file names (bytename.h), file handles (name_to_handle_at/open_by_handle_at: an inode's identity,
// generation included, so a journal record can name the file it wrote whatever its name is later),
// and syncfs, the one call here that is asynchronous (it runs on libuv's pool: it waits for a disk).
// Every call returns its result, or a negative errno; none throws for a failed syscall.
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "bytename.h"

#define PATH_BYTES 4096
#define NAME_BYTES 256

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

// A path or name argument: a string (bytes as native/bytename.h maps them) into buf, NUL-terminated.
static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  uint16_t units[PATH_BYTES + 1]; // one more than a path may have: a longer string shows as n == PATH_BYTES
  size_t n;
  if (napi_get_value_string_utf16(env, v, (char16_t *) units, PATH_BYTES + 1, &n) != napi_ok) return -EINVAL;
  if (n >= PATH_BYTES) return -ENAMETOOLONG;
  char bytes[3 * PATH_BYTES];
  long len = bytename_encode(units, n, bytes);
  if (len < 0) return (int) len;
  if ((size_t) len + 1 > size) return -ENAMETOOLONG;
  memcpy(buf, bytes, len);
  buf[len] = 0;
  return 0;
}

static napi_value make_name(napi_env env, const char *s, size_t n) {
  napi_value out;
  bytename_to_js(env, s, n, &out);
  return out;
}

static int64_t get_int(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

#define ARGS(n) \
  size_t argc = n; napi_value argv[n]; \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL); \
  if (argc < n) { napi_throw_type_error(env, NULL, "too few arguments"); return NULL; }

#define PATH_ARG(name, i) \
  char name[PATH_BYTES]; \
  { int e = get_string(env, argv[i], name, sizeof(name)); if (e) return make_int(env, e); }

#define NAME_ARG(name, i) \
  char name[NAME_BYTES]; \
  { int e = get_string(env, argv[i], name, sizeof(name)); if (e) return make_int(env, e == -ENAMETOOLONG ? -ERANGE : e); }

#define RESULT(call) make_int(env, (call) < 0 ? -errno : 0)

// utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, noFollow)
static napi_value sys_utimensat(napi_env env, napi_callback_info info) {
  ARGS(6)
  PATH_ARG(path, 0)
  struct timespec ts[2] = {
    { .tv_sec = get_int(env, argv[1]), .tv_nsec = get_int(env, argv[2]) },
    { .tv_sec = get_int(env, argv[3]), .tv_nsec = get_int(env, argv[4]) },
  };
  bool nofollow = false;
  napi_get_value_bool(env, argv[5], &nofollow);
  return RESULT(utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0));
}

// futimens(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec)
static napi_value sys_futimens(napi_env env, napi_callback_info info) {
  ARGS(5)
  struct timespec ts[2] = {
    { .tv_sec = get_int(env, argv[1]), .tv_nsec = get_int(env, argv[2]) },
    { .tv_sec = get_int(env, argv[3]), .tv_nsec = get_int(env, argv[4]) },
  };
  return RESULT(futimens((int) get_int(env, argv[0]), ts));
}

// mknod(path, mode, rdev)
static napi_value sys_mknod(napi_env env, napi_callback_info info) {
  ARGS(3)
  PATH_ARG(path, 0)
  return RESULT(mknod(path, (mode_t) get_int(env, argv[1]), (dev_t) get_int(env, argv[2])));
}

// lsetxattr(path, name, value: Buffer, flags)
static napi_value sys_lsetxattr(napi_env env, napi_callback_info info) {
  ARGS(4)
  PATH_ARG(path, 0)
  NAME_ARG(name, 1)
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) return make_int(env, -EINVAL);
  return RESULT(lsetxattr(path, name, data, len, (int) get_int(env, argv[3])));
}

// lgetxattr(path, name) -> Buffer | -errno
static napi_value sys_lgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2)
  PATH_ARG(path, 0)
  NAME_ARG(name, 1)
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) return make_int(env, -errno);
    void *data; napi_value out;
    napi_create_buffer(env, size, &data, &out);
    ssize_t got = lgetxattr(path, name, data, size);
    if (got < 0 && errno == ERANGE) continue; // grew between the calls
    if (got < 0) return make_int(env, -errno);
    if (got == size) return out;
    napi_value copy;
    napi_create_buffer_copy(env, got, data, NULL, &copy);
    return copy;
  }
}

// llistxattr(path) -> string[] | -errno
static napi_value sys_llistxattr(napi_env env, napi_callback_info info) {
  ARGS(1)
  PATH_ARG(path, 0)
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) return make_int(env, -errno);
    char *list = malloc(size + 1);
    ssize_t got = size ? llistxattr(path, list, size) : 0;
    if (got < 0) { int e = errno; free(list); if (e == ERANGE) continue; return make_int(env, -e); }
    napi_value out;
    napi_create_array(env, &out);
    uint32_t n = 0;
    for (ssize_t i = 0; i < got; i += strlen(list + i) + 1) {
      napi_set_element(env, out, n++, make_name(env, list + i, strnlen(list + i, got - i)));
    }
    free(list);
    return out;
  }
}

// lremovexattr(path, name)
static napi_value sys_lremovexattr(napi_env env, napi_callback_info info) {
  ARGS(2)
  PATH_ARG(path, 0)
  NAME_ARG(name, 1)
  return RESULT(lremovexattr(path, name));
}

// fallocate(fd, mode, offset, length)
static napi_value sys_fallocate(napi_env env, napi_callback_info info) {
  ARGS(4)
  return RESULT(fallocate((int) get_int(env, argv[0]), (int) get_int(env, argv[1]), get_int(env, argv[2]), get_int(env, argv[3])));
}

// handleOf(dirfd, path) -> Buffer | -errno: the file handle of `path` (relative to `dirfd`, or of
// `dirfd` itself when `path` is empty), never following a last symlink. The buffer is the handle's
// u32 type (little-endian) followed by its bytes.
static napi_value sys_handle_of(napi_env env, napi_callback_info info) {
  ARGS(2)
  PATH_ARG(path, 1)
  int dirfd = (int) get_int(env, argv[0]);
  union { struct file_handle fh; char space[sizeof(struct file_handle) + MAX_HANDLE_SZ]; } h;
  h.fh.handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (name_to_handle_at(dirfd, path, &h.fh, &mount_id, path[0] ? 0 : AT_EMPTY_PATH) < 0) return make_int(env, -errno);
  char out[4 + MAX_HANDLE_SZ];
  uint32_t type = (uint32_t) h.fh.handle_type;
  memcpy(out, &type, 4);
  memcpy(out + 4, h.fh.f_handle, h.fh.handle_bytes);
  napi_value buf;
  napi_create_buffer_copy(env, 4 + h.fh.handle_bytes, out, NULL, &buf);
  return buf;
}

// openByHandle(mountFd, handle, flags) -> fd | -errno (ESTALE: the inode is gone, or was reused)
static napi_value sys_open_by_handle(napi_env env, napi_callback_info info) {
  ARGS(3)
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len < 4 || len > 4 + MAX_HANDLE_SZ) return make_int(env, -EINVAL);
  union { struct file_handle fh; char space[sizeof(struct file_handle) + MAX_HANDLE_SZ]; } h;
  uint32_t type;
  memcpy(&type, data, 4);
  h.fh.handle_type = (int) type;
  h.fh.handle_bytes = (unsigned) (len - 4);
  memcpy(h.fh.f_handle, (char *) data + 4, len - 4);
  int fd = open_by_handle_at((int) get_int(env, argv[0]), &h.fh, (int) get_int(env, argv[2]));
  return make_int(env, fd < 0 ? -errno : fd);
}

// syncfs(fd, callback(result)): result 0 or -errno, once the filesystem holding fd is synced.
typedef struct {
  napi_async_work work;
  napi_ref callback;
  int fd;
  int result;
} SyncfsJob;

static void syncfs_execute(napi_env env, void *data) {
  (void) env;
  SyncfsJob *job = data;
  job->result = syncfs(job->fd) < 0 ? -errno : 0;
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  SyncfsJob *job = data;
  napi_value cb, undefined, result;
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_undefined(env, &undefined);
  result = make_int(env, status == napi_ok ? job->result : -ECANCELED);
  napi_call_function(env, undefined, cb, 1, &result, NULL);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value sys_syncfs(napi_env env, napi_callback_info info) {
  ARGS(2)
  SyncfsJob *job = calloc(1, sizeof(SyncfsJob));
  job->fd = (int) get_int(env, argv[0]);
  napi_create_reference(env, argv[1], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "epochfs.syncfs", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

// encodeName(string) -> Buffer | -errno: the bytes a name or path string stands for
static napi_value sys_encode_name(napi_env env, napi_callback_info info) {
  ARGS(1)
  size_t n;
  if (napi_get_value_string_utf16(env, argv[0], NULL, 0, &n) != napi_ok) return make_int(env, -EINVAL);
  uint16_t *units = malloc((n + 1) * sizeof(uint16_t));
  char *bytes = malloc(3 * n + 1);
  napi_get_value_string_utf16(env, argv[0], (char16_t *) units, n + 1, &n);
  long len = bytename_encode(units, n, bytes);
  napi_value out = NULL;
  if (len < 0) out = make_int(env, len);
  else napi_create_buffer_copy(env, len, bytes, NULL, &out);
  free(units);
  free(bytes);
  return out;
}

// decodeName(Buffer) -> string: the string for a name or path read as bytes (readdir, readlink)
static napi_value sys_decode_name(napi_env env, napi_callback_info info) {
  ARGS(1)
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) return make_int(env, -EINVAL);
  return make_name(env, data, len);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "utimensat", NULL, sys_utimensat, NULL, NULL, NULL, napi_default, NULL },
    { "futimens", NULL, sys_futimens, NULL, NULL, NULL, napi_default, NULL },
    { "mknod", NULL, sys_mknod, NULL, NULL, NULL, napi_default, NULL },
    { "lsetxattr", NULL, sys_lsetxattr, NULL, NULL, NULL, napi_default, NULL },
    { "lgetxattr", NULL, sys_lgetxattr, NULL, NULL, NULL, napi_default, NULL },
    { "llistxattr", NULL, sys_llistxattr, NULL, NULL, NULL, napi_default, NULL },
    { "lremovexattr", NULL, sys_lremovexattr, NULL, NULL, NULL, napi_default, NULL },
    { "fallocate", NULL, sys_fallocate, NULL, NULL, NULL, napi_default, NULL },
    { "encodeName", NULL, sys_encode_name, NULL, NULL, NULL, napi_default, NULL },
    { "decodeName", NULL, sys_decode_name, NULL, NULL, NULL, napi_default, NULL },
    { "handleOf", NULL, sys_handle_of, NULL, NULL, NULL, napi_default, NULL },
    { "openByHandle", NULL, sys_open_by_handle, NULL, NULL, NULL, napi_default, NULL },
    { "syncfs", NULL, sys_syncfs, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  napi_value v;
  napi_create_int64(env, UTIME_NOW, &v); napi_set_named_property(env, exports, "UTIME_NOW", v);
  napi_create_int64(env, UTIME_OMIT, &v); napi_set_named_property(env, exports, "UTIME_OMIT", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
