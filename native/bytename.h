// File names are bytes; JavaScript strings are UTF-16. This is the one codec between the two
// (docs/ARCHITECTURE.md, "Names are bytes"), used by native/sys.c and by the patched fuse-native:
//
//   bytes -> string: every valid UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, at
//                    most U+10FFFF) becomes its character; every other byte b becomes the lone
//                    surrogate U+DC00 + b (0x80 <= b <= 0xFF), one byte at a time ("surrogateescape").
//   string -> bytes: the reverse; a lone surrogate U+DC80..U+DCFF becomes its byte again.
//
// So every byte string round-trips exactly, and names that are valid UTF-8 are the strings they
// always were (journal and store formats unchanged for them). A lone surrogate outside
// U+DC80..U+DCFF never comes from the decoder; the encoder refuses it (EILSEQ).
#ifndef EPOCHFS_BYTENAME_H
#define EPOCHFS_BYTENAME_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

// Length of the valid UTF-8 sequence at p (left bytes remain), or 0 when p starts none.
static inline size_t bytename_utf8_len (const unsigned char *p, size_t left) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len; unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else return 0;
  if (left < len || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; i++) if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return len;
}

// 1 when the n bytes at s are valid UTF-8 throughout (the common case: no conversion needed).
static inline int bytename_is_utf8 (const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *) s;
  for (size_t i = 0; i < n;) {
    size_t len = bytename_utf8_len(p + i, n - i);
    if (len == 0) return 0;
    i += len;
  }
  return 1;
}

// Decodes n bytes into out (room for n units: no byte yields more than one unit on average).
// Returns the number of UTF-16 units written.
static inline size_t bytename_decode (const char *s, size_t n, uint16_t *out) {
  const unsigned char *p = (const unsigned char *) s;
  size_t units = 0;
  for (size_t i = 0; i < n;) {
    size_t len = bytename_utf8_len(p + i, n - i);
    uint32_t cp;
    if (len == 0) { out[units++] = 0xDC00 + p[i]; i++; continue; }
    if (len == 1) cp = p[i];
    else if (len == 2) cp = ((p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
    else if (len == 3) cp = ((p[i] & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
    else cp = ((p[i] & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
    if (cp >= 0x10000) {
      out[units++] = 0xD800 + ((cp - 0x10000) >> 10);
      out[units++] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
    } else out[units++] = (uint16_t) cp;
    i += len;
  }
  return units;
}

// Encodes n UTF-16 units into out (room for 3 bytes per unit). Returns the bytes written, or
// -EILSEQ for a lone surrogate the decoder never makes.
static inline long bytename_encode (const uint16_t *u, size_t n, char *out) {
  unsigned char *o = (unsigned char *) out;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = u[i];
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (u[++i] - 0xDC00);
    } else if (cp >= 0xDC80 && cp <= 0xDCFF) {
      o[len++] = (unsigned char) (cp - 0xDC00);
      continue;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
      return -EILSEQ;
    }
    if (cp < 0x80) o[len++] = (unsigned char) cp;
    else if (cp < 0x800) { o[len++] = 0xC0 | (cp >> 6); o[len++] = 0x80 | (cp & 0x3F); }
    else if (cp < 0x10000) { o[len++] = 0xE0 | (cp >> 12); o[len++] = 0x80 | ((cp >> 6) & 0x3F); o[len++] = 0x80 | (cp & 0x3F); }
    else { o[len++] = 0xF0 | (cp >> 18); o[len++] = 0x80 | ((cp >> 12) & 0x3F); o[len++] = 0x80 | ((cp >> 6) & 0x3F); o[len++] = 0x80 | (cp & 0x3F); }
  }
  return (long) len;
}

#ifdef NAPI_AUTO_LENGTH
#include <stdlib.h>
// The JS string for the n bytes of a name at s (for files that include node_api.h first).
static inline napi_status bytename_to_js (napi_env env, const char *s, size_t n, napi_value *out) {
  if (bytename_is_utf8(s, n)) return napi_create_string_utf8(env, s, n, out);
  uint16_t *units = malloc((n + 1) * sizeof(uint16_t));
  if (units == NULL) return napi_generic_failure;
  size_t len = bytename_decode(s, n, units);
  napi_status status = napi_create_string_utf16(env, (const char16_t *) units, len, out);
  free(units);
  return status;
}
#endif

#endif
