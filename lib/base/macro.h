/* Small language helpers shared by every module: cleanup attributes, ownership transfer, sizes. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand over ownership of a pointer: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
  ({                                                                                               \
    __typeof__(p) _tp_ = (p);                                                                      \
    (p) = NULL;                                                                                    \
    _tp_;                                                                                          \
  })

static inline void freep(void *p) {
  free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Declares name##p(type **) that calls func on a non-NULL pointer, for _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
  static inline void func##p(type *p) {                                                            \
    if (*p)                                                                                        \
      func(*p);                                                                                    \
  }

/* Wipe memory that held a secret; not optimised away. */
static inline void secure_wipe(void *p, size_t n) {
  if (p && n)
    explicit_bzero(p, n);
}

/* Constant-time comparison of secrets and MACs: 0 when equal. */
static inline int memcmp_ct(const void *a, const void *b, size_t n) {
  const volatile unsigned char *x = a, *y = b;
  unsigned char d = 0;
  for (size_t i = 0; i < n; i++)
    d |= (unsigned char)(x[i] ^ y[i]);
  return d != 0;
}

/* Checked size arithmetic: false on overflow. */
static inline int size_add(size_t a, size_t b, size_t *ret) {
  return !__builtin_add_overflow(a, b, ret);
}
static inline int size_mul(size_t a, size_t b, size_t *ret) {
  return !__builtin_mul_overflow(a, b, ret);
}
