/* Compose files: YAML check and app-compose.json. */
#include "teepod_compose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/macro.h"
#include "base/str.h"

#define YAML_MAX_EVENTS 1000000

int teepod_compose_yaml_check(const char *text, size_t len, char **ret_why) {
  yaml_parser_t p;
  yaml_event_t ev;
  int r = 0;
  bool first_node = true;
  unsigned n = 0;
  if (!yaml_parser_initialize(&p))
    return -ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  for (;;) {
    if (!yaml_parser_parse(&p, &ev)) {
      if (ret_why && asprintf(ret_why, "compose file is not valid YAML: %s at line %zu",
                              p.problem ? p.problem : "error", p.problem_mark.line + 1) < 0)
        *ret_why = NULL;
      r = -EINVAL;
      break;
    }
    yaml_event_type_t t = ev.type;
    if (first_node && (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
                       t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT)) {
      first_node = false;
      if (t != YAML_MAPPING_START_EVENT) {
        if (ret_why)
          *ret_why = strdup("compose file must be a mapping (services: ...)");
        r = -EINVAL;
      }
    }
    yaml_event_delete(&ev);
    if (r < 0 || t == YAML_STREAM_END_EVENT)
      break;
    if (++n > YAML_MAX_EVENTS) {
      if (ret_why)
        *ret_why = strdup("compose file is too complex");
      r = -EINVAL;
      break;
    }
  }
  yaml_parser_delete(&p);
  if (r == 0 && first_node) {
    if (ret_why)
      *ret_why = strdup("compose file is empty");
    r = -EINVAL;
  }
  return r;
}

int teepod_compose_build(const char *text, size_t len, const char *name, struct buf *doc,
                         struct app_compose_info *info, bool *ret_wrapped, char **ret_why) {
  int r;
  *ret_wrapped = false;
  if (len == 0) {
    *ret_why = strdup("compose_file is empty");
    return -EINVAL;
  }
  if (len > APP_COMPOSE_MAX) {
    *ret_why = strdup("compose_file is over 1 MiB");
    return -EINVAL;
  }
  if (memchr(text, 0, len)) {
    *ret_why = strdup("compose_file holds a NUL byte");
    return -EINVAL;
  }
  if (app_compose_is_document(text, len)) {
    if ((r = app_compose_check(text, len, info, ret_why)) < 0)
      return r;
    return buf_append(doc, text, len);
  }
  if ((r = teepod_compose_yaml_check(text, len, ret_why)) < 0)
    return r;
  if ((r = app_compose_wrap(text, len, name, doc)) < 0) {
    *ret_why = strdup("compose_file is not valid UTF-8");
    return r;
  }
  *ret_wrapped = true;
  return app_compose_check((const char *)doc->data, doc->len, info, ret_why);
}
