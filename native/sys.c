// Linux calls that Node's fs lacks, exposed synchronously for the FUSE serving thread and for replay:
// nanosecond utimensat with UTIME_NOW/UTIME_OMIT (fs.utimes rounds through a double of seconds),
// mknod (fifos, devices), the l*xattr family (no xattr API in Node), and the byte-exact codec for
// file names (bytename.h).
// Every call returns its result, or a negative errno; none throws for a failed syscall.
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  napi_value v;
  napi_create_int64(env, UTIME_NOW, &v); napi_set_named_property(env, exports, "UTIME_NOW", v);
  napi_create_int64(env, UTIME_OMIT, &v); napi_set_named_property(env, exports, "UTIME_OMIT", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
