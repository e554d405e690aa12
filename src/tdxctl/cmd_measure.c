/* tdxctl measure IMAGE_DIR --vcpu N --memory M [--json] [--ccel FILE]: the MRTD and RTMR0-2 a
 * TD booted from an image folder gets (lib/attest/td_measure.h), computed offline.
 * tdxctl measure --pe FILE: the Authenticode SHA-384 of a PE/COFF file. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attest/image_meta.h"
#include "attest/td_measure.h"
#include "base/fileio.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/str.h"
#include "tdxctl.h"

#define MEASURE_MAX_VCPUS 4096u
#define MEASURE_MAX_MEMORY_MB ((uint64_t)16 * 1024 * 1024) /* 16 TiB */
#define MEASURE_MAX_CCEL ((size_t)1024 * 1024)

static void measure_usage(FILE *f) {
  fprintf(f,
          "Usage: tdxctl measure IMAGE_DIR --vcpu N --memory M [--json] [--ccel FILE]\n"
          "       tdxctl measure --pe FILE\n\n"
          "Prints the MRTD and RTMR0-2 of a TD booted from the image folder IMAGE_DIR (its\n"
          "metadata.json) with N vCPUs and M of memory, as teepod measures it.\n"
          "  --vcpu N      number of vCPUs (1..%u)\n"
          "  --memory M    memory size: MiB, or with a unit (512M, 2G, 1T)\n"
          "  --json        {\"mrtd\",\"rtmr0\",\"rtmr1\",\"rtmr2\",\"simulated\":[...]}\n"
          "  --ccel FILE   also write the boot event log (CCEL) of RTMR0-2 to FILE\n"
          "  --pe FILE     print the Authenticode SHA-384 of a PE/COFF file and exit\n"
          "Values marked simulated are this platform's rule, not what a TDX module gives\n"
          "(RTMR0 always; MRTD when the image has no TDVF firmware).\n",
          MEASURE_MAX_VCPUS);
}

/* Plain digits: MiB; otherwise a size with a unit that must be a whole number of MiB. */
static int parse_memory_mb(const char *s, uint32_t *ret) {
  uint64_t v;
  bool digits = *s != '\0';
  for (const char *p = s; *p; p++)
    digits &= *p >= '0' && *p <= '9';
  if (digits) {
    if (str_to_u64(s, &v) < 0)
      return -EINVAL;
  } else {
    if (str_to_size(s, &v) < 0 || v % (1024 * 1024) != 0)
      return -EINVAL;
    v /= 1024 * 1024;
  }
  if (v == 0 || v > MEASURE_MAX_MEMORY_MB)
    return -ERANGE;
  *ret = (uint32_t)v;
  return 0;
}

static int measure_pe(const char *path) {
  _cleanup_buf_ struct buf pe = BUF_INIT(0);
  uint8_t d[48];
  char hex[97];
  int r = file_read_capped(path, TD_MEASURE_MAX_FILE, false, &pe);
  if (r < 0)
    return cli_fail(r, "reading %s", path);
  if ((r = pe_authenticode_sha384(pe.data, pe.len, d)) < 0)
    return cli_fail(r == -EBADMSG ? 0 : r, "%s: %s", path,
                    r == -EBADMSG ? "not a well-formed PE/COFF image" : "hashing");
  hex_encode(d, sizeof(d), hex);
  printf("%s\n", hex);
  return 0;
}

static int print_json(const struct td_measurements *m) {
  _cleanup_json_ json_t *j = json_object(), *sim = json_array();
  static const char *const names[] = {"rtmr0", "rtmr1", "rtmr2"};
  if (!j || !sim || json_set_hex(j, "mrtd", m->mrtd, 48) < 0)
    return cli_fail(-ENOMEM, "building JSON");
  for (size_t i = 0; i < 3; i++)
    if (json_set_hex(j, names[i], m->rtmr[i], 48) < 0)
      return cli_fail(-ENOMEM, "building JSON");
  if ((m->simulated_mrtd && json_array_append_new(sim, json_string("mrtd")) < 0) ||
      (m->simulated_rtmr0 && json_array_append_new(sim, json_string("rtmr0")) < 0) ||
      json_object_set(j, "simulated", sim) < 0)
    return cli_fail(-ENOMEM, "building JSON");
  return cli_print_json(j);
}

static void print_text(const struct td_measurements *m) {
  char hex[97];
  hex_encode(m->mrtd, 48, hex);
  printf("mrtd:  %s%s\n", hex, m->simulated_mrtd ? "  (simulated)" : "");
  for (size_t i = 0; i < 3; i++) {
    hex_encode(m->rtmr[i], 48, hex);
    printf("rtmr%zu: %s%s\n", i, hex, i == 0 && m->simulated_rtmr0 ? "  (simulated)" : "");
  }
}

int cmd_measure(int argc, char **argv) {
  enum { OPT_VCPU = 0x100, OPT_MEMORY, OPT_JSON, OPT_CCEL, OPT_PE };
  static const struct option opts[] = {
    {"help", no_argument, NULL, 'h'},        {"vcpu", required_argument, NULL, OPT_VCPU},
    {"memory", required_argument, NULL, OPT_MEMORY}, {"json", no_argument, NULL, OPT_JSON},
    {"ccel", required_argument, NULL, OPT_CCEL},     {"pe", required_argument, NULL, OPT_PE},
    {},
  };
  const char *vcpu_s = NULL, *memory_s = NULL, *ccel_path = NULL, *pe_path = NULL;
  bool json = false;
  int c, r;

  optind = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h':
      measure_usage(stdout);
      return 0;
    case OPT_VCPU:
      vcpu_s = optarg;
      break;
    case OPT_MEMORY:
      memory_s = optarg;
      break;
    case OPT_JSON:
      json = true;
      break;
    case OPT_CCEL:
      ccel_path = optarg;
      break;
    case OPT_PE:
      pe_path = optarg;
      break;
    default:
      measure_usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (pe_path) {
    if (argc != optind || vcpu_s || memory_s || json || ccel_path)
      return cli_usage_error("--pe takes a file and no other argument");
    return measure_pe(pe_path);
  }
  if (argc - optind != 1) {
    measure_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (!vcpu_s || !memory_s)
    return cli_usage_error("--vcpu and --memory are required");
  uint64_t vcpus;
  if (cli_parse_uint(vcpu_s, MEASURE_MAX_VCPUS, &vcpus) < 0 || vcpus == 0)
    return cli_usage_error("--vcpu '%s' is not a number from 1 to %u", vcpu_s,
                           MEASURE_MAX_VCPUS);
  uint32_t memory_mb;
  if (parse_memory_mb(memory_s, &memory_mb) < 0)
    return cli_usage_error("--memory '%s' is not a size of 1 MiB to 16 TiB in whole MiB",
                           memory_s);

  const char *dir = argv[optind];
  struct image_meta meta = {0};
  _cleanup_free_ char *why = NULL;
  if ((r = image_meta_load(dir, &meta, &why)) < 0)
    return cli_fail(0, "%s: %s", dir, why ? why : strerror(-r));

  struct td_measurements m;
  _cleanup_buf_ struct buf ccel = BUF_INIT(MEASURE_MAX_CCEL);
  struct td_measure_input in = {.image = &meta, .vcpus = (uint32_t)vcpus, .memory_mb = memory_mb};
  r = td_measure_image(&in, &m, ccel_path ? &ccel : NULL);
  if (r < 0) {
    int ret;
    if (r == -EBADMSG)
      ret = cli_fail(0, "%s: the kernel is not a well-formed PE/COFF image or the firmware's "
                        "TDVF metadata is malformed", dir);
    else if (r == -EFBIG)
      ret = cli_fail(0, "%s: a kernel, initrd or firmware file is larger than %zu MiB", dir,
                     TD_MEASURE_MAX_FILE >> 20);
    else
      ret = cli_fail(r, "%s: measuring", dir);
    image_meta_free(&meta);
    return ret;
  }
  image_meta_free(&meta);
  if (ccel_path && (r = cli_write_output(ccel_path, ccel.data, ccel.len, 0644)) < 0)
    return cli_fail(r, "writing %s", ccel_path);
  if (json)
    return print_json(&m);
  print_text(&m);
  return 0;
}
