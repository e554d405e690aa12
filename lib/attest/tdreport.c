/* TDREPORT codec: fixed 1024-byte layout, every byte kept. */
#include "attest/tdreport.h"

#include <string.h>

#include "base/hex.h"

/* Field table: offset/size pairs walked in order by parse and encode, so the two cannot
 * disagree. Offsets are absolute within the 1024-byte report. */
struct td_field {
  size_t off;
  size_t size;
  size_t member; /* offsetof in struct tdreport */
};

#define F(o, m)                                                                                    \
  { (o), sizeof(((struct tdreport *)0)->m), offsetof(struct tdreport, m) }

static const struct td_field fields[] = {
    F(0, mac.report_type),
    F(4, mac.reserved1),
    F(16, mac.cpusvn),
    F(32, mac.tee_tcb_info_hash),
    F(80, mac.tee_info_hash),
    F(128, mac.report_data),
    F(192, mac.reserved2),
    F(224, mac.mac),
    F(256, tee_tcb_info.valid),
    F(264, tee_tcb_info.tee_tcb_svn),
    F(280, tee_tcb_info.mrseam),
    F(328, tee_tcb_info.mrsignerseam),
    F(376, tee_tcb_info.attributes),
    F(384, tee_tcb_info.tee_tcb_svn2),
    F(400, tee_tcb_info.reserved),
    F(495, reserved_tcb),
    F(512, td_info.attributes),
    F(520, td_info.xfam),
    F(528, td_info.mrtd),
    F(576, td_info.mrconfigid),
    F(624, td_info.mrowner),
    F(672, td_info.mrownerconfig),
    F(720, td_info.rtmr),
    F(912, td_info.servtd_hash),
    F(960, td_info.reserved),
};

#undef F

_Static_assert(sizeof(struct tdreport) == TDREPORT_SIZE, "struct tdreport has no padding");

int tdreport_parse(const uint8_t *data, size_t len, struct tdreport *ret) {
  if (!data || !ret)
    return -EINVAL;
  if (len != TDREPORT_SIZE)
    return -EBADMSG;
  struct tdreport r;
  for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
    memcpy((uint8_t *)&r + fields[i].member, data + fields[i].off, fields[i].size);
  *ret = r;
  return 0;
}

void tdreport_encode(const struct tdreport *r, uint8_t out[TDREPORT_SIZE]) {
  for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
    memcpy(out + fields[i].off, (const uint8_t *)r + fields[i].member, fields[i].size);
}

int tdreport_encode_buf(const struct tdreport *r, struct buf *out) {
  uint8_t tmp[TDREPORT_SIZE];
  tdreport_encode(r, tmp);
  return buf_append(out, tmp, sizeof(tmp));
}

static int set_hex(json_t *o, const char *key, const void *p, size_t n) {
  char *h = hex_encode_alloc(p, n);
  if (!h)
    return -ENOMEM;
  json_t *s = json_string(h);
  free(h);
  if (!s || json_object_set_new(o, key, s) < 0)
    return -ENOMEM;
  return 0;
}

int tdreport_to_json(const struct tdreport *r, json_t **ret) {
  json_t *o = json_object(), *tcb = json_object(), *ti = json_object();
  int k = -ENOMEM;
  if (!o || !tcb || !ti)
    goto fail;
#define H(obj, key, field)                                                                         \
  do {                                                                                             \
    if ((k = set_hex(obj, key, field, sizeof(field))) < 0)                                         \
      goto fail;                                                                                   \
  } while (0)
  H(o, "report_type", r->mac.report_type);
  H(o, "cpusvn", r->mac.cpusvn);
  H(o, "tee_tcb_info_hash", r->mac.tee_tcb_info_hash);
  H(o, "tee_info_hash", r->mac.tee_info_hash);
  H(o, "report_data", r->mac.report_data);
  H(o, "mac", r->mac.mac);
  H(tcb, "valid", r->tee_tcb_info.valid);
  H(tcb, "tee_tcb_svn", r->tee_tcb_info.tee_tcb_svn);
  H(tcb, "mr_seam", r->tee_tcb_info.mrseam);
  H(tcb, "mr_signer_seam", r->tee_tcb_info.mrsignerseam);
  H(tcb, "attributes", r->tee_tcb_info.attributes);
  H(tcb, "tee_tcb_svn2", r->tee_tcb_info.tee_tcb_svn2);
  H(ti, "attributes", r->td_info.attributes);
  H(ti, "xfam", r->td_info.xfam);
  H(ti, "mrtd", r->td_info.mrtd);
  H(ti, "mrconfigid", r->td_info.mrconfigid);
  H(ti, "mrowner", r->td_info.mrowner);
  H(ti, "mrownerconfig", r->td_info.mrownerconfig);
  H(ti, "rtmr0", r->td_info.rtmr[0]);
  H(ti, "rtmr1", r->td_info.rtmr[1]);
  H(ti, "rtmr2", r->td_info.rtmr[2]);
  H(ti, "rtmr3", r->td_info.rtmr[3]);
  H(ti, "servtd_hash", r->td_info.servtd_hash);
#undef H
  k = -ENOMEM;
  if (json_object_set_new(o, "tee_tcb_info", tcb) < 0) {
    tcb = NULL;
    goto fail;
  }
  tcb = NULL;
  if (json_object_set_new(o, "td_info", ti) < 0) {
    ti = NULL;
    goto fail;
  }
  *ret = o;
  return 0;
fail:
  json_decref(o);
  json_decref(tcb);
  json_decref(ti);
  return k;
}
