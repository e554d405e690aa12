/* tdxctl env decrypt|encrypt|pubkey: the encrypted app environment (the SDKs' encryptEnvVars
 * format, lib/crypto/envcrypt.h). The env key is read from a file, never from argv. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/fileio.h"
#include "base/hex.h"
#include "crypto/envcrypt.h"
#include "tdxctl.h"

static void env_usage(FILE *f) {
  fprintf(f,
          "Usage: tdxctl env decrypt --key-file FILE [-i IN|-] [-o OUT|-] [--shell]\n"
          "       tdxctl env encrypt --pubkey HEX [-i IN|-] [-o OUT|-]\n"
          "       tdxctl env pubkey --key-file FILE\n\n"
          "  decrypt  decrypt an encrypted environment (hex as the SDKs' encryptEnvVars emit\n"
          "           it, or the raw bytes) with the app's env key (KMS env_crypt_key) and print\n"
          "           it as {\"env\":[{\"key\":..,\"value\":..}]} (OUT is written with mode 0600)\n"
          "           --shell  print KEY='value' lines instead (for sh's '.')\n"
          "  encrypt  encrypt JSON ({\"env\":[...]}) or KEY=VALUE lines ('#' comments and blank\n"
          "           lines skipped) to the env public key HEX; prints the hex blob\n"
          "  pubkey   print the X25519 public key of the env key\n"
          "  --key-file FILE  the 32-byte env key, as 64 hex characters or the raw bytes\n");
}

static bool is_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct slice trim(struct slice s) {
  while (s.len && is_space(s.ptr[0])) {
    s.ptr++;
    s.len--;
  }
  while (s.len && is_space(s.ptr[s.len - 1]))
    s.len--;
  return s;
}

static int env_read_key(const char *path, uint8_t ret[32]) {
  struct buf b;
  buf_init_secret(&b, 256);
  int r = file_read_all(path, 256, &b);
  if (r < 0) {
    buf_free(&b);
    return cli_fail(r == -EFBIG ? -EBADMSG : r, "reading the key file %s", path);
  }
  if (b.len == 32) {
    memcpy(ret, b.data, 32);
  } else {
    struct slice s = trim(buf_slice(&b));
    r = hex_decode_exact((const char *)s.ptr, s.len, ret, 32);
  }
  buf_free(&b);
  if (r < 0)
    return cli_fail(0, "%s: expected 32 bytes, raw or as 64 hex characters", path);
  return 0;
}

static bool all_hex(struct slice s) {
  if (s.len >= 2 && s.ptr[0] == '0' && (s.ptr[1] == 'x' || s.ptr[1] == 'X')) {
    s.ptr += 2;
    s.len -= 2;
  }
  if (s.len == 0)
    return false;
  for (size_t i = 0; i < s.len; i++) {
    uint8_t c = s.ptr[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return false;
  }
  return true;
}

/* KEY='value' with ' written as '\'' : safe to source from sh. */
static int env_format_shell(const struct envcrypt_env *e, struct buf *out) {
  int r = 0;
  for (size_t i = 0; i < e->n && r == 0; i++) {
    const struct envcrypt_var *v = &e->vars[i];
    r = buf_printf(out, "%s='", v->key);
    for (size_t j = 0; j < v->value_len && r == 0; j++)
      r = v->value[j] == '\'' ? buf_append_str(out, "'\\''") : buf_append_u8(out, (uint8_t)v->value[j]);
    if (r == 0)
      r = buf_append_str(out, "'\n");
  }
  return r;
}

static int env_decrypt(const char *key_file, const char *in_path, const char *out_path,
                       bool shell) {
  uint8_t key[32];
  int r = env_read_key(key_file, key);
  if (r)
    return r;
  _cleanup_buf_ struct buf in = BUF_INIT(ENVCRYPT_MAX_HEX + 4096);
  r = cli_read_input(in_path, &in);
  if (r < 0) {
    secure_wipe(key, sizeof(key));
    return cli_fail(r, "reading %s", in_path ? in_path : "stdin");
  }
  /* hex text (the SDK output) or the raw blob: a raw blob starts with 32 random bytes, which
   * are all hex digits only by a chance of about 2^-80 */
  struct slice t = trim(buf_slice(&in));
  _cleanup_envcrypt_env_ struct envcrypt_env env = {};
  if (all_hex(t))
    r = envcrypt_decrypt_env(key, t.ptr, t.len, true, &env);
  else
    r = envcrypt_decrypt_env(key, in.data, in.len, false, &env);
  secure_wipe(key, sizeof(key));
  if (r == -EBADMSG)
    return cli_fail(0, "decryption failed: wrong key, or the data is damaged or not an "
                       "encrypted environment");
  if (r < 0)
    return cli_fail(r, "decrypting");

  struct buf out;
  buf_init_secret(&out, 2 * ENVCRYPT_MAX_JSON + 4096);
  r = shell ? env_format_shell(&env, &out) : envcrypt_env_to_json(&env, &out);
  if (r == 0 && !shell)
    r = buf_append_u8(&out, '\n');
  if (r == 0)
    r = cli_write_output(out_path, out.data, out.len, 0600);
  buf_free(&out);
  if (r < 0)
    return cli_fail(r, "writing %s", out_path ? out_path : "stdout");
  return 0;
}

/* KEY=VALUE lines; the value is everything after the first '=' (a trailing \r is dropped). */
static int env_parse_lines(const uint8_t *p, size_t len, struct envcrypt_env *e) {
  size_t line = 0;
  while (len) {
    line++;
    const uint8_t *nl = memchr(p, '\n', len);
    size_t n = nl ? (size_t)(nl - p) : len;
    struct slice l = SLICE(p, n);
    p += nl ? n + 1 : n;
    len -= nl ? n + 1 : n;
    if (l.len && l.ptr[l.len - 1] == '\r')
      l.len--;
    struct slice tl = trim(l);
    if (tl.len == 0 || tl.ptr[0] == '#')
      continue;
    const uint8_t *eq = memchr(l.ptr, '=', l.len);
    if (!eq)
      return cli_fail(0, "line %zu: expected KEY=VALUE", line);
    size_t klen = (size_t)(eq - l.ptr);
    int r = envcrypt_env_add(e, (const char *)l.ptr, klen, (const char *)eq + 1,
                             l.len - klen - 1);
    if (r == -EEXIST)
      return cli_fail(0, "line %zu: variable %.*s given twice", line, (int)klen, l.ptr);
    if (r == -EINVAL)
      return cli_fail(0, "line %zu: bad variable name or value (names: [A-Za-z_][A-Za-z0-9_]*)",
                      line);
    if (r < 0)
      return cli_fail(r, "line %zu", line);
  }
  return 0;
}

static int env_encrypt(const char *pubkey_hex, const char *in_path, const char *out_path) {
  uint8_t pub[32];
  if (hex_decode_exact(pubkey_hex, strlen(pubkey_hex), pub, 32) < 0)
    return cli_usage_error("--pubkey: expected 32 bytes as 64 hex characters");
  struct buf in;
  buf_init_secret(&in, ENVCRYPT_MAX_JSON);
  int r = cli_read_input(in_path, &in);
  if (r < 0) {
    buf_free(&in);
    return cli_fail(r, "reading %s", in_path ? in_path : "stdin");
  }
  _cleanup_envcrypt_env_ struct envcrypt_env env = {};
  struct slice t = trim(buf_slice(&in));
  if (t.len && t.ptr[0] == '{') {
    r = envcrypt_parse_env((const char *)in.data, in.len, &env);
    if (r < 0)
      r = cli_fail(r == -EINVAL || r == -EBADMSG ? 0 : r,
                   "input is not {\"env\":[{\"key\":..,\"value\":..}]} with distinct valid names");
  } else {
    r = env_parse_lines(in.data, in.len, &env);
  }
  buf_free(&in);
  if (r)
    return r;

  struct buf json;
  buf_init_secret(&json, ENVCRYPT_MAX_JSON);
  _cleanup_buf_ struct buf hex = BUF_INIT(ENVCRYPT_MAX_HEX + 1);
  r = envcrypt_env_to_json(&env, &json);
  if (r == 0)
    r = envcrypt_encrypt(pub, json.data, json.len, &hex);
  buf_free(&json);
  if (r == -EINVAL)
    return cli_fail(0, "cannot encrypt: a value is not UTF-8, or the public key is unusable");
  if (r < 0)
    return cli_fail(r, "encrypting");
  if ((r = buf_append_u8(&hex, '\n')) < 0 ||
      (r = cli_write_output(out_path, hex.data, hex.len, 0644)) < 0)
    return cli_fail(r, "writing %s", out_path ? out_path : "stdout");
  return 0;
}

static int env_pubkey(const char *key_file) {
  uint8_t key[32], pub[32];
  int r = env_read_key(key_file, key);
  if (r)
    return r;
  r = envcrypt_public_key(key, pub);
  secure_wipe(key, sizeof(key));
  if (r < 0)
    return cli_fail(r, "deriving the public key");
  char hex[65];
  hex_encode(pub, 32, hex);
  printf("%s\n", hex);
  return fflush(stdout) == 0 ? 0 : cli_fail(-errno, "writing stdout");
}

int cmd_env(int argc, char **argv) {
  enum { OPT_KEY_FILE = 0x100, OPT_PUBKEY, OPT_SHELL };
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {"key-file", required_argument, NULL, OPT_KEY_FILE},
      {"pubkey", required_argument, NULL, OPT_PUBKEY},
      {"shell", no_argument, NULL, OPT_SHELL},
      {"input", required_argument, NULL, 'i'},
      {"output", required_argument, NULL, 'o'},
      {},
  };
  if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    env_usage(stdout);
    return 0;
  }
  if (argc < 2) {
    env_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *sub = argv[1];
  const char *key_file = NULL, *pubkey = NULL, *in_path = NULL, *out_path = NULL;
  bool shell = false;
  int c;
  optind = 0;
  while ((c = getopt_long(argc - 1, argv + 1, "hi:o:", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      env_usage(stdout);
      return 0;
    case OPT_KEY_FILE:
      key_file = optarg;
      break;
    case OPT_PUBKEY:
      pubkey = optarg;
      break;
    case OPT_SHELL:
      shell = true;
      break;
    case 'i':
      in_path = optarg;
      break;
    case 'o':
      out_path = optarg;
      break;
    default:
      env_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (optind != argc - 1)
    return cli_usage_error("unexpected argument '%s'", argv[1 + optind]);

  if (strcmp(sub, "decrypt") == 0) {
    if (!key_file || pubkey)
      return cli_usage_error("decrypt takes --key-file FILE (and no --pubkey)");
    return env_decrypt(key_file, in_path, out_path, shell);
  }
  if (strcmp(sub, "encrypt") == 0) {
    if (!pubkey || key_file || shell)
      return cli_usage_error("encrypt takes --pubkey HEX (and no --key-file or --shell)");
    return env_encrypt(pubkey, in_path, out_path);
  }
  if (strcmp(sub, "pubkey") == 0) {
    if (!key_file || pubkey || shell || in_path || out_path)
      return cli_usage_error("pubkey takes only --key-file FILE");
    return env_pubkey(key_file);
  }
  return cli_usage_error("unknown subcommand '%s' (decrypt, encrypt, pubkey)", sub);
}
