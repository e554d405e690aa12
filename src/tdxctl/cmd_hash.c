/* tdxctl hash ALG [-b] [-i IN|-] [-o OUT|-|!] [-t HASHFILE|-]: streams IN to OUT (like
 * upstream iohash) and writes the digest of the stream to HASHFILE (default stderr). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/hex.h"
#include "crypto/hash.h"
#include "tdxctl.h"

static void hash_usage(FILE *f) {
  fprintf(f,
          "Usage: tdxctl hash ALG [-b] [-i IN|-] [-o OUT|-|!] [-t HASHFILE|-]\n\n"
          "Copies IN (default stdin) to OUT (default stdout; '!' discards) and writes the\n"
          "digest of the data to HASHFILE (default stderr) as hex and a newline.\n"
          "  -b         write the digest as raw bytes instead of hex\n"
          "ALG: sha256, sha384, sha512, sha224, sha512-224, sha512-256, sha3-224, sha3-256,\n"
          "     sha3-384, sha3-512, keccak224, keccak256, keccak384, keccak512, blake2b256,\n"
          "     blake2b512, blake2s256\n"
          "Files are written atomically: nothing appears at OUT or HASHFILE on failure.\n");
}

static bool is_std(const char *p) {
  return !p || strcmp(p, "-") == 0;
}

int cmd_hash(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {}};
  const char *in_path = NULL, *out_path = NULL, *hash_path = NULL;
  bool binary = false;
  int c, r, ret = 0;

  optind = 0;
  while ((c = getopt_long(argc, argv, "hbi:o:t:", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      hash_usage(stdout);
      return 0;
    case 'b':
      binary = true;
      break;
    case 'i':
      in_path = optarg;
      break;
    case 'o':
      out_path = optarg;
      break;
    case 't':
      hash_path = optarg;
      break;
    default:
      hash_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (argc - optind != 1) {
    hash_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  enum hash_alg alg;
  if (hash_alg_from_name(argv[optind], &alg) < 0)
    return cli_usage_error("unknown algorithm '%s' (see --help)", argv[optind]);

  _cleanup_(hash_ctx_freep) struct hash_ctx *ctx = NULL;
  if ((r = hash_ctx_new(alg, &ctx)) < 0)
    return cli_fail(r, "starting %s", argv[optind]);

  int in_fd = STDIN_FILENO, out_fd = -1;
  struct cli_atomic out_file = {.fd = -1};
  bool discard = out_path && strcmp(out_path, "!") == 0;
  if (!is_std(in_path)) {
    in_fd = open(in_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (in_fd < 0)
      return cli_fail(-errno, "opening %s", in_path);
  }
  if (!discard) {
    if (is_std(out_path)) {
      out_fd = STDOUT_FILENO;
    } else {
      r = cli_atomic_open(out_path, 0644, &out_file);
      if (r < 0) {
        ret = cli_fail(r, "creating %s", out_path);
        goto out;
      }
      out_fd = out_file.fd;
    }
  }

  static uint8_t chunk[65536];
  for (;;) {
    ssize_t n = read(in_fd, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      ret = cli_fail(-errno, "reading %s", is_std(in_path) ? "stdin" : in_path);
      goto out;
    }
    if (n == 0)
      break;
    if ((r = hash_ctx_update(ctx, chunk, (size_t)n)) < 0) {
      ret = cli_fail(r, "hashing");
      goto out;
    }
    if (out_fd >= 0 && (r = cli_write_fd(out_fd, chunk, (size_t)n)) < 0) {
      ret = cli_fail(r, "writing %s", is_std(out_path) ? "stdout" : out_path);
      goto out;
    }
  }

  uint8_t digest[HASH_MAX_SIZE];
  size_t dlen = hash_alg_size(alg);
  if ((r = hash_ctx_final(ctx, digest)) < 0) {
    ret = cli_fail(r, "hashing");
    goto out;
  }
  char text[2 * HASH_MAX_SIZE + 2];
  const void *dout = digest;
  size_t dout_len = dlen;
  if (!binary) {
    hex_encode(digest, dlen, text);
    text[2 * dlen] = '\n';
    dout = text;
    dout_len = 2 * dlen + 1;
  }
  if (out_file.tmp && (r = cli_atomic_commit(&out_file)) < 0) {
    ret = cli_fail(r, "writing %s", out_path);
    goto out;
  }
  if (!hash_path)
    r = cli_write_fd(STDERR_FILENO, dout, dout_len);
  else
    r = cli_write_output(hash_path, dout, dout_len, 0644);
  if (r < 0)
    ret = cli_fail(r, "writing the digest to %s", hash_path ? hash_path : "stderr");
out:
  cli_atomic_abort(&out_file);
  if (in_fd != STDIN_FILENO)
    close(in_fd);
  return ret;
}
