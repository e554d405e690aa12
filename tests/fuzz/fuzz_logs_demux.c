/* The Docker log-stream frame splitter and item formatter of /logs (src/tappd/logs.c).
 * Input: byte 0 = flags (text, bare, ansi, timestamps; content type), byte 1 = read split,
 * the rest = the stream. The items must not depend on how the stream is split into reads;
 * text items are valid UTF-8 and, unless ansi, carry no ESC byte; framed output never exceeds
 * what the frames allow. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tappd_logs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
  struct logs_params p;
  struct buf items;
  size_t n_items;
};

static bool utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > n)
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

static int emit(void *ud, int stream, const uint8_t *p, size_t n) {
  struct out *o = ud;
  if (stream < -1 || stream > 2 || n > LOGS_MAX_FRAME || (n && !p))
    abort();
  o->n_items++;
  if (o->p.text) {
    struct buf m = BUF_INIT(4 * LOGS_MAX_FRAME + 16);
    if (logs_utf8_lossy(p, n, !o->p.ansi, &m) < 0 || !utf8_valid(m.data, m.len))
      abort();
    if (!o->p.ansi && m.len && memchr(m.data, 0x1b, m.len))
      abort();
    buf_free(&m);
  }
  size_t before = o->items.len;
  int r = logs_format_item(&o->p, stream, p, n, &o->items);
  if (r < 0)
    abort(); /* any frame must be formattable */
  if (!o->p.bare && (o->items.len == before || o->items.data[o->items.len - 1] != '\n'))
    abort();
  return 0;
}

static int run(const uint8_t *d, size_t n, const char *ct, unsigned step, struct out *o) {
  struct logs_demux dm;
  logs_demux_init(&dm, ct);
  size_t off = 0, k = 0;
  int r = 0;
  while (off < n && r == 0) {
    size_t len = step ? 1 + (d[k++ % n] % step) : n - off;
    if (len > n - off)
      len = n - off;
    r = logs_demux_feed(&dm, d + off, len, emit, o);
    off += len;
  }
  if (r == 0 && logs_demux_partial(&dm))
    r = 1;
  logs_demux_free(&dm);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  static const char *const cts[] = {NULL, "application/vnd.docker.multiplexed-stream",
                                    "application/vnd.docker.raw-stream", "text/plain"};
  uint8_t f = data[0];
  unsigned step = data[1] % 23;
  const char *ct = cts[(f >> 4) & 3];
  data += 2;
  size -= 2;
  struct out a = {0}, b = {0};
  a.p.text = f & 1;
  a.p.bare = f & 2;
  a.p.ansi = f & 4;
  a.p.timestamps = f & 8;
  b.p = a.p;
  buf_init(&a.items, (size_t)64 << 20);
  buf_init(&b.items, (size_t)64 << 20);
  int ra = run(data, size, ct, 0, &a);
  int rb = run(data, size, ct, step ? step : 1, &b);
  if (ra < 0 && ra != -EBADMSG && ra != -ENOBUFS)
    abort();
  /* Raw streams turn every read into an item, so only framed streams compare item by item. */
  bool raw = size && !(ct && strncmp(ct, "application/vnd.docker.multiplexed-stream", 41) == 0) &&
             data[0] > 2;
  if (!raw && (ra != rb || a.n_items != b.n_items || a.items.len != b.items.len ||
               (a.items.len && memcmp(a.items.data, b.items.data, a.items.len) != 0)))
    abort();
  if (raw && (ra != 0 || rb != 0))
    abort();
  buf_free(&a.items);
  buf_free(&b.items);
  return 0;
}
