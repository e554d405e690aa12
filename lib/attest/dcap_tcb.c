/* TCB info / QE identity parsing and the TCB evaluation of Intel's QVL. */
#include "attest/dcap_tcb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/json.h"
#include "base/str.h"

static const char *const status_names[_DCAP_STATUS_MAX] = {
    [DCAP_STATUS_UP_TO_DATE] = "UpToDate",
    [DCAP_STATUS_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [DCAP_STATUS_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [DCAP_STATUS_OUT_OF_DATE] = "OutOfDate",
    [DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [DCAP_STATUS_REVOKED] = "Revoked",
};

const char *dcap_status_name(enum dcap_status s) {
  if ((unsigned)s >= _DCAP_STATUS_MAX)
    return "?";
  return status_names[s];
}

int dcap_status_from_name(const char *name, enum dcap_status *ret) {
  if (!name || !ret)
    return -EINVAL;
  for (unsigned i = 0; i < _DCAP_STATUS_MAX; i++)
    if (str_eq(name, status_names[i])) {
      *ret = (enum dcap_status)i;
      return 0;
    }
  return -EINVAL;
}

static void msgf(char *msg, size_t n, const char *fmt, ...) _printf_(3, 4);
static void msgf(char *msg, size_t n, const char *fmt, ...) {
  if (!msg || !n)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, n, fmt, ap);
  va_end(ap);
}

/* ---- JSON helpers: every failure is -EBADMSG ---- */

static int get_str(const json_t *o, const char *key, const char **ret) {
  return json_get_str(o, key, ret) < 0 ? -EBADMSG : 0;
}

static int get_uint(const json_t *o, const char *key, uint32_t max, uint32_t *ret) {
  uint64_t v;
  if (json_get_u64(o, key, &v) < 0 || v > max)
    return -EBADMSG;
  *ret = (uint32_t)v;
  return 0;
}

static int get_hex(const json_t *o, const char *key, uint8_t *out, size_t len) {
  return json_get_hex(o, key, out, len) < 0 ? -EBADMSG : 0;
}

static int get_date(const json_t *o, const char *key, int64_t *ret) {
  const char *s;
  if (get_str(o, key, &s) < 0)
    return -EBADMSG;
  return dcap_parse_date(s, ret) < 0 ? -EBADMSG : 0;
}

static int get_array(const json_t *o, const char *key, size_t min, size_t max, json_t **ret) {
  json_t *a;
  if (json_get_array(o, key, &a) < 0)
    return -EBADMSG;
  size_t n = json_array_size(a);
  if (n < min)
    return -EBADMSG;
  if (n > max)
    return -ENOBUFS;
  *ret = a;
  return 0;
}

static int get_status(const json_t *o, bool isv_only, enum dcap_status *ret) {
  const char *s;
  if (get_str(o, "tcbStatus", &s) < 0 || dcap_status_from_name(s, ret) < 0)
    return -EBADMSG;
  if (isv_only && *ret != DCAP_STATUS_UP_TO_DATE && *ret != DCAP_STATUS_OUT_OF_DATE &&
      *ret != DCAP_STATUS_REVOKED)
    return -EBADMSG;
  return 0;
}

/* advisoryIDs: optional array of short printable strings. */
static int get_advisories(const json_t *o, char ***ret, size_t *ret_n) {
  *ret = NULL;
  *ret_n = 0;
  json_t *a = json_object_get(o, "advisoryIDs");
  if (!a || json_is_null(a))
    return 0;
  if (!json_is_array(a))
    return -EBADMSG;
  size_t n = json_array_size(a);
  if (n > DCAP_TCB_MAX_ADVISORIES)
    return -ENOBUFS;
  if (n == 0)
    return 0;
  char **v = calloc(n + 1, sizeof(char *));
  if (!v)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(a, i);
    if (!json_is_string(s) || json_string_length(s) == 0 ||
        json_string_length(s) > DCAP_TCB_MAX_ADVISORY_LEN ||
        !str_is_printable_ascii(json_string_value(s))) {
      strv_free(v);
      return -EBADMSG;
    }
    v[i] = strdup(json_string_value(s));
    if (!v[i]) {
      strv_free(v);
      return -ENOMEM;
    }
  }
  *ret = v;
  *ret_n = n;
  return 0;
}

/* {"svn":N, ...} x16 */
static int get_components(const json_t *o, const char *key, uint8_t out[16]) {
  json_t *a;
  int r = get_array(o, key, 16, 16, &a);
  if (r < 0)
    return -EBADMSG;
  for (size_t i = 0; i < 16; i++) {
    json_t *c = json_array_get(a, i);
    uint32_t v;
    if (!json_is_object(c) || get_uint(c, "svn", 255, &v) < 0)
      return -EBADMSG;
    out[i] = (uint8_t)v;
  }
  return 0;
}

static void isv_levels_free(struct dcap_isv_level *l, size_t n) {
  for (size_t i = 0; l && i < n; i++)
    strv_free(l[i].advisory_ids);
  free(l);
}

static int parse_isv_levels(const json_t *o, struct dcap_isv_level **ret, size_t *ret_n) {
  json_t *a;
  int r = get_array(o, "tcbLevels", 1, DCAP_TCB_MAX_LEVELS, &a);
  if (r < 0)
    return r;
  size_t n = json_array_size(a);
  struct dcap_isv_level *l = calloc(n, sizeof(*l));
  if (!l)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(a, i), *tcb;
    uint32_t svn;
    if (!json_is_object(e) || json_get_object(e, "tcb", &tcb) < 0 ||
        get_uint(tcb, "isvsvn", 65535, &svn) < 0 || get_date(e, "tcbDate", &l[i].tcb_date) < 0 ||
        get_status(e, true, &l[i].status) < 0) {
      isv_levels_free(l, n);
      return -EBADMSG;
    }
    l[i].isvsvn = (uint16_t)svn;
    r = get_advisories(e, &l[i].advisory_ids, &l[i].n_advisory_ids);
    if (r < 0) {
      isv_levels_free(l, n);
      return r;
    }
  }
  *ret = l;
  *ret_n = n;
  return 0;
}

/* ---- TCB info ---- */

void dcap_tcb_info_free(struct dcap_tcb_info *t) {
  if (!t)
    return;
  for (size_t i = 0; t->levels && i < t->n_levels; i++)
    strv_free(t->levels[i].advisory_ids);
  free(t->levels);
  for (size_t i = 0; t->modules && i < t->n_modules; i++)
    isv_levels_free(t->modules[i].levels, t->modules[i].n_levels);
  free(t->modules);
  *t = (struct dcap_tcb_info){};
}

static int parse_module(const json_t *o, struct dcap_tdx_module_identity *m, bool with_id) {
  if (!json_is_object(o))
    return -EBADMSG;
  if (get_hex(o, "mrsigner", m->mrsigner, 48) < 0 ||
      get_hex(o, "attributes", m->attributes, 8) < 0 ||
      get_hex(o, "attributesMask", m->attributes_mask, 8) < 0)
    return -EBADMSG;
  if (!with_id)
    return 0;
  const char *id;
  if (get_str(o, "id", &id) < 0 || strlen(id) >= sizeof(m->id) || strlen(id) == 0 ||
      !str_is_printable_ascii(id))
    return -EBADMSG;
  snprintf(m->id, sizeof(m->id), "%s", id);
  return parse_isv_levels(o, &m->levels, &m->n_levels);
}

static int parse_tcb_levels(const json_t *o, bool tdx, struct dcap_tcb_info *t) {
  json_t *a;
  int r = get_array(o, "tcbLevels", 1, DCAP_TCB_MAX_LEVELS, &a);
  if (r < 0)
    return r;
  size_t n = json_array_size(a);
  t->levels = calloc(n, sizeof(*t->levels));
  if (!t->levels)
    return -ENOMEM;
  t->n_levels = n;
  for (size_t i = 0; i < n; i++) {
    struct dcap_tcb_level *l = &t->levels[i];
    json_t *e = json_array_get(a, i), *tcb;
    uint32_t pcesvn;
    if (!json_is_object(e) || json_get_object(e, "tcb", &tcb) < 0 ||
        get_components(tcb, "sgxtcbcomponents", l->sgx_comp) < 0 ||
        get_uint(tcb, "pcesvn", 65535, &pcesvn) < 0 ||
        (tdx && get_components(tcb, "tdxtcbcomponents", l->tdx_comp) < 0) ||
        get_date(e, "tcbDate", &l->tcb_date) < 0 || get_status(e, false, &l->status) < 0)
      return -EBADMSG;
    l->pcesvn = (uint16_t)pcesvn;
    r = get_advisories(e, &l->advisory_ids, &l->n_advisory_ids);
    if (r < 0)
      return r;
  }
  return 0;
}

static int tcb_info_parse_json(const json_t *j, struct dcap_tcb_info *t) {
  if (!json_is_object(j))
    return -EBADMSG;
  const char *id;
  uint32_t version;
  if (get_str(j, "id", &id) < 0 || get_uint(j, "version", UINT32_MAX, &version) < 0)
    return -EBADMSG;
  if (str_eq(id, "SGX"))
    t->id = DCAP_TCB_ID_SGX;
  else if (str_eq(id, "TDX"))
    t->id = DCAP_TCB_ID_TDX;
  else
    return -ENOTSUP;
  if (version != 3)
    return -ENOTSUP;
  t->version = version;
  if (get_date(j, "issueDate", &t->issue_date) < 0 ||
      get_date(j, "nextUpdate", &t->next_update) < 0 || get_hex(j, "fmspc", t->fmspc, 6) < 0 ||
      get_hex(j, "pceId", t->pce_id, 2) < 0 ||
      get_uint(j, "tcbType", UINT32_MAX, &t->tcb_type) < 0 ||
      get_uint(j, "tcbEvaluationDataNumber", UINT32_MAX, &t->tcb_eval_num) < 0)
    return -EBADMSG;
  bool tdx = t->id == DCAP_TCB_ID_TDX;
  int r;
  if (tdx) {
    struct dcap_tdx_module_identity m = {};
    json_t *mod = json_object_get(j, "tdxModule");
    if (parse_module(mod, &m, false) < 0)
      return -EBADMSG;
    memcpy(t->module_mrsigner, m.mrsigner, 48);
    memcpy(t->module_attributes, m.attributes, 8);
    memcpy(t->module_attributes_mask, m.attributes_mask, 8);
    json_t *ids = json_object_get(j, "tdxModuleIdentities");
    if (ids && !json_is_null(ids)) {
      if (!json_is_array(ids))
        return -EBADMSG;
      size_t n = json_array_size(ids);
      if (n > DCAP_TCB_MAX_MODULES)
        return -ENOBUFS;
      if (n) {
        t->modules = calloc(n, sizeof(*t->modules));
        if (!t->modules)
          return -ENOMEM;
        t->n_modules = n;
        for (size_t i = 0; i < n; i++) {
          r = parse_module(json_array_get(ids, i), &t->modules[i], true);
          if (r < 0)
            return r;
        }
      }
    }
  }
  return parse_tcb_levels(j, tdx, t);
}

int dcap_tcb_info_parse(const char *text, size_t len, struct dcap_tcb_info *ret) {
  if (!text || !ret)
    return -EINVAL;
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text, len, DCAP_COLLATERAL_MAX_JSON, &j);
  if (r < 0)
    return r;
  struct dcap_tcb_info t = {};
  r = tcb_info_parse_json(j, &t);
  if (r < 0) {
    dcap_tcb_info_free(&t);
    return r;
  }
  *ret = t;
  return 0;
}

/* ---- QE identity ---- */

void dcap_qe_identity_free(struct dcap_qe_identity *q) {
  if (!q)
    return;
  isv_levels_free(q->levels, q->n_levels);
  *q = (struct dcap_qe_identity){};
}

static int qe_identity_parse_json(const json_t *j, struct dcap_qe_identity *q) {
  if (!json_is_object(j))
    return -EBADMSG;
  const char *id;
  uint32_t version, prodid;
  if (get_str(j, "id", &id) < 0 || get_uint(j, "version", UINT32_MAX, &version) < 0)
    return -EBADMSG;
  if (str_eq(id, "QE"))
    q->id = DCAP_ENCLAVE_QE;
  else if (str_eq(id, "TD_QE"))
    q->id = DCAP_ENCLAVE_TD_QE;
  else if (str_eq(id, "QVE"))
    q->id = DCAP_ENCLAVE_QVE;
  else
    return -ENOTSUP;
  if (version != 2)
    return -ENOTSUP;
  q->version = version;
  if (get_date(j, "issueDate", &q->issue_date) < 0 ||
      get_date(j, "nextUpdate", &q->next_update) < 0 ||
      get_uint(j, "tcbEvaluationDataNumber", UINT32_MAX, &q->tcb_eval_num) < 0 ||
      get_hex(j, "miscselect", q->miscselect, 4) < 0 ||
      get_hex(j, "miscselectMask", q->miscselect_mask, 4) < 0 ||
      get_hex(j, "attributes", q->attributes, 16) < 0 ||
      get_hex(j, "attributesMask", q->attributes_mask, 16) < 0 ||
      get_hex(j, "mrsigner", q->mrsigner, 32) < 0 || get_uint(j, "isvprodid", 65535, &prodid) < 0)
    return -EBADMSG;
  q->isvprodid = (uint16_t)prodid;
  return parse_isv_levels(j, &q->levels, &q->n_levels);
}

int dcap_qe_identity_parse(const char *text, size_t len, struct dcap_qe_identity *ret) {
  if (!text || !ret)
    return -EINVAL;
  _cleanup_json_ json_t *j = NULL;
  int r = json_parse_buf(text, len, DCAP_COLLATERAL_MAX_JSON, &j);
  if (r < 0)
    return r;
  struct dcap_qe_identity q = {};
  r = qe_identity_parse_json(j, &q);
  if (r < 0) {
    dcap_qe_identity_free(&q);
    return r;
  }
  *ret = q;
  return 0;
}

/* ---- evaluation ---- */

static enum dcap_status merge_outofdate(enum dcap_status platform, enum dcap_status other) {
  if (other == DCAP_STATUS_OUT_OF_DATE) {
    if (platform == DCAP_STATUS_UP_TO_DATE || platform == DCAP_STATUS_SW_HARDENING_NEEDED)
      return DCAP_STATUS_OUT_OF_DATE;
    if (platform == DCAP_STATUS_CONFIGURATION_NEEDED ||
        platform == DCAP_STATUS_CONFIGURATION_AND_SW_HARDENING_NEEDED)
      return DCAP_STATUS_OUT_OF_DATE_CONFIGURATION_NEEDED;
  }
  if (other == DCAP_STATUS_REVOKED)
    return DCAP_STATUS_REVOKED;
  return platform;
}

enum dcap_status dcap_status_merge_module(enum dcap_status platform, enum dcap_status module) {
  return merge_outofdate(platform, module);
}

enum dcap_status dcap_status_merge_qe(enum dcap_status platform, enum dcap_status qe) {
  return merge_outofdate(platform, qe);
}

static const struct dcap_isv_level *isv_match(const struct dcap_isv_level *l, size_t n,
                                              uint16_t isvsvn) {
  for (size_t i = 0; i < n; i++)
    if (isvsvn >= l[i].isvsvn)
      return &l[i];
  return NULL;
}

static const char *enclave_id_name(enum dcap_enclave_id id) {
  switch (id) {
  case DCAP_ENCLAVE_QE:
    return "QE";
  case DCAP_ENCLAVE_TD_QE:
    return "TD_QE";
  case DCAP_ENCLAVE_QVE:
    return "QVE";
  }
  return "?";
}

int dcap_qe_identity_check(const struct dcap_qe_identity *qi, uint32_t tee_type,
                           const struct sgx_report_body *qe,
                           const struct dcap_isv_level **ret_level, char *msg, size_t msglen) {
  if (!qi || !qe || !ret_level)
    return -EINVAL;
  enum dcap_enclave_id want = tee_type == QUOTE_TEE_TDX ? DCAP_ENCLAVE_TD_QE : DCAP_ENCLAVE_QE;
  if (qi->id != want) {
    msgf(msg, msglen, "QE identity is for %s, the quote needs %s", enclave_id_name(qi->id),
         enclave_id_name(want));
    return -EPERM;
  }
  uint8_t misc[4];
  le32_write(misc, qe->misc_select);
  for (size_t i = 0; i < 4; i++)
    if ((misc[i] & qi->miscselect_mask[i]) != qi->miscselect[i]) {
      msgf(msg, msglen, "QE identity mismatch: MISCSELECT");
      return -EPERM;
    }
  for (size_t i = 0; i < 16; i++)
    if ((qe->attributes[i] & qi->attributes_mask[i]) != qi->attributes[i]) {
      msgf(msg, msglen, "QE identity mismatch: ATTRIBUTES");
      return -EPERM;
    }
  if (memcmp(qe->mr_signer, qi->mrsigner, 32) != 0) {
    msgf(msg, msglen, "QE identity mismatch: MRSIGNER");
    return -EPERM;
  }
  if (qe->isv_prod_id != qi->isvprodid) {
    msgf(msg, msglen, "QE identity mismatch: ISVPRODID %u, expected %u", qe->isv_prod_id,
         qi->isvprodid);
    return -EPERM;
  }
  const struct dcap_isv_level *l = isv_match(qi->levels, qi->n_levels, qe->isv_svn);
  if (!l) {
    msgf(msg, msglen, "no matching QE identity TCB level for ISVSVN %u", qe->isv_svn);
    return -ENOENT;
  }
  *ret_level = l;
  return 0;
}

static bool sgx_ok(const struct dcap_tcb_level *l, const struct pck_ext *pck) {
  for (size_t i = 0; i < 16; i++)
    if (pck->tcb_comp[i] < l->sgx_comp[i])
      return false;
  return pck->pcesvn >= l->pcesvn;
}

static bool tdx_ok(const struct dcap_tcb_level *l, const uint8_t tee_tcb_svn[16]) {
  for (size_t i = tee_tcb_svn[1] > 0 ? 2 : 0; i < 16; i++)
    if (tee_tcb_svn[i] < l->tdx_comp[i])
      return false;
  return true;
}

static void hex_short(const uint8_t *p, size_t n, char *out) {
  static const char h[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = h[p[i] >> 4];
    out[2 * i + 1] = h[p[i] & 15];
  }
  out[2 * n] = '\0';
}

int dcap_tcb_evaluate(const struct dcap_tcb_info *ti, const struct quote *q,
                      const struct pck_ext *pck, const struct dcap_isv_level *qe_level,
                      struct dcap_tcb_outcome *ret, char *msg, size_t msglen) {
  if (!ti || !q || !pck || !qe_level || !ret)
    return -EINVAL;
  bool quote_tdx = q->tee_type == QUOTE_TEE_TDX;
  bool tdx = ti->id == DCAP_TCB_ID_TDX;
  if (tdx != quote_tdx) {
    msgf(msg, msglen, "TCB info is for %s, the quote is %s", tdx ? "TDX" : "SGX",
         quote_tdx ? "TDX" : "SGX");
    return -EPERM;
  }
  if (quote_tdx && q->body_type == QUOTE_BODY_SGX) {
    msgf(msg, msglen, "TDX quote without a TD report body");
    return -EPERM;
  }
  if (memcmp(ti->fmspc, pck->fmspc, 6) != 0) {
    char a[13], b[13];
    hex_short(ti->fmspc, 6, a);
    hex_short(pck->fmspc, 6, b);
    msgf(msg, msglen, "TCB info FMSPC %s does not match the PCK certificate's %s", a, b);
    return -EPERM;
  }
  if (memcmp(ti->pce_id, pck->pceid, 2) != 0) {
    char a[5], b[5];
    hex_short(ti->pce_id, 2, a);
    hex_short(pck->pceid, 2, b);
    msgf(msg, msglen, "TCB info PCE ID %s does not match the PCK certificate's %s", a, b);
    return -EPERM;
  }

  const uint8_t *tee = quote_tdx ? q->td.tee_tcb_svn : NULL;
  const struct dcap_tdx_module_identity *mod = NULL;
  if (tdx) {
    const uint8_t *mrsigner = ti->module_mrsigner, *attr = ti->module_attributes,
                  *mask = ti->module_attributes_mask;
    if (q->version > 3 && tee[1] > 0) {
      char id[16];
      snprintf(id, sizeof(id), "TDX_%02X", tee[1]);
      for (size_t i = 0; i < ti->n_modules && !mod; i++)
        if (strcasecmp(ti->modules[i].id, id) == 0)
          mod = &ti->modules[i];
      if (!mod) {
        msgf(msg, msglen, "TDX module identity %s not in TCB info", id);
        return -EPERM;
      }
      mrsigner = mod->mrsigner;
      attr = mod->attributes;
      mask = mod->attributes_mask;
    }
    if (memcmp(q->td.mr_signer_seam, mrsigner, 48) != 0) {
      msgf(msg, msglen, "TDX module mismatch: MRSIGNERSEAM");
      return -EPERM;
    }
    for (size_t i = 0; i < 8; i++)
      if ((q->td.seam_attributes[i] & mask[i]) != (attr[i] & mask[i])) {
        msgf(msg, msglen, "TDX module mismatch: SEAM attributes");
        return -EPERM;
      }
  }

  const struct dcap_tcb_level *sgx_level = NULL, *level = NULL;
  for (size_t i = 0; i < ti->n_levels && !level; i++) {
    const struct dcap_tcb_level *l = &ti->levels[i];
    if (!sgx_ok(l, pck))
      continue;
    if (!sgx_level)
      sgx_level = l;
    if (!tdx || tdx_ok(l, tee))
      level = l;
  }
  if (!level) {
    msgf(msg, msglen, "no matching TCB level%s",
         sgx_level ? " (TDX components)" : " (SGX components / PCESVN)");
    return -ENOENT;
  }

  struct dcap_tcb_outcome o = {
      .platform_status = level->status,
      .qe_status = qe_level->status,
      .module_status = DCAP_STATUS_UP_TO_DATE,
      .platform_level = level,
      .qe_level = qe_level,
  };
  enum dcap_status st = level->status;
  if (mod) {
    const struct dcap_isv_level *ml = isv_match(mod->levels, mod->n_levels, tee[0]);
    if (!ml) {
      msgf(msg, msglen, "no matching TDX module TCB level for %s ISVSVN %u", mod->id, tee[0]);
      return -ENOENT;
    }
    o.module_level = ml;
    o.module_status = ml->status;
    st = dcap_status_merge_module(st, ml->status);
  }
  o.status = dcap_status_merge_qe(st, qe_level->status);
  *ret = o;
  return 0;
}
