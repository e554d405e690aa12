/* JSON <-> protobuf-c codec driven by message descriptors (pRPC JSON mode, upstream dstack).
 *
 * Mapping (both directions unless stated):
 *   field names      proto field names as written (snake_case)
 *   int32/sint32/sfixed32, uint32/fixed32, int64/sint64/sfixed64, uint64/fixed64
 *                    JSON integers, range-checked (uint64 limited to INT64_MAX: jansson's integer)
 *   float/double     JSON numbers (integers accepted); non-finite values are emitted as null
 *   bool             true/false
 *   enum             emitted as the integer value; accepted as an integer or a value name
 *   string           JSON string (UTF-8)
 *   bytes            hex string; decoding accepts either case and an optional leading 0x;
 *                    emitted lowercase without prefix, or with "0x" under PRPC_JSON_BYTES_0X
 *   message          object; an unset message field is emitted as null
 *   repeated         array (at most PRPC_JSON_MAX_REPEATED elements)
 *   oneof            members appear as plain fields; only the selected one is emitted and at
 *                    most one may be given
 * Every field is emitted, defaults included. On input missing fields and null take the
 * default, unknown keys are ignored, a wrong type fails with -EINVAL and an error text naming
 * the field ("field 'a.b': expected string"). Nested messages deeper than PRPC_JSON_MAX_DEPTH
 * fail with -ENOBUFS, as do arrays over the element cap.
 *
 * Messages built here are laid out as protobuf_c_message_unpack() lays them out (message,
 * strings, bytes data and repeated arrays each allocated with malloc), so both kinds are
 * released with protobuf_c_message_free_unpacked(m, NULL) or prpc_message_free(). */
#pragma once

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define PRPC_JSON_MAX_DEPTH 32
#define PRPC_JSON_MAX_REPEATED 65536

enum {
  /* Emit bytes as "0x" + hex (seed-era prpc 0.2.1) instead of plain hex (prpc >= 0.2.2). */
  PRPC_JSON_BYTES_0X = 1u << 0,
  /* Input only: scalar values may also be given as strings ("12", "true", "-3"), as they are
   * when they come from a URL query string. */
  PRPC_JSON_SCALAR_STRINGS = 1u << 1,
};

/* A default-initialised message of type d (all fields at their defaults). */
int prpc_message_new(const ProtobufCMessageDescriptor *d, ProtobufCMessage **ret);
/* Sets a bytes field to a malloc'd copy of p[0..n) (n 0: empty, no allocation), as the
 * unpacker lays it out. -ENOMEM leaves it empty. */
int prpc_bytes_set(ProtobufCBinaryData *b, const void *p, size_t n);
/* protobuf_c_message_free_unpacked(m, NULL); NULL is fine. */
void prpc_message_free(ProtobufCMessage *m);

/* Builds a message of type d from a JSON object (or null = default message). On failure err
 * (if errlen > 0) receives a one-line reason naming the field. */
int prpc_json_to_message(const ProtobufCMessageDescriptor *d, const json_t *j,
                         ProtobufCMessage **ret, char *err, size_t errlen);
int prpc_json_to_message_full(const ProtobufCMessageDescriptor *d, const json_t *j,
                              unsigned flags, ProtobufCMessage **ret, char *err, size_t errlen);

/* Parses JSON text (an object; empty text or only whitespace = default message) of at most
 * max_len bytes and builds the message. -EINVAL for syntax errors too. */
int prpc_json_text_to_message(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                              size_t max_len, unsigned flags, ProtobufCMessage **ret, char *err,
                              size_t errlen);

/* Builds a message from a URL query string ("a=1&b=x%20y&list[]=p&list[]=q"): keys and values
 * are percent-decoded ('+' is a space), "name", "name[]" and "name[N]" append to a repeated
 * field in the order given, scalars are parsed from their text, keys that name no field (such
 * as "json") are ignored, nested message fields cannot be set. NULL or "" = default message. */
int prpc_query_to_message(const ProtobufCMessageDescriptor *d, const char *query,
                          ProtobufCMessage **ret, char *err, size_t errlen);

/* The JSON object of m with every field (bytes as plain hex). -ERANGE for a uint64 above
 * INT64_MAX, -EBADMSG for a string that is not UTF-8, -ENOMEM. */
int prpc_message_to_json(const ProtobufCMessage *m, json_t **ret);
int prpc_message_to_json_full(const ProtobufCMessage *m, unsigned flags, json_t **ret);

/* The same text as json_dump_buf() of prpc_message_to_json_full(m, flags) with JSON_COMPACT
 * (fields in descriptor order, jansson's escaping and number formats), appended to out without
 * building a JSON tree. Same errors; out is left as it was on failure. */
int prpc_message_to_json_text(const ProtobufCMessage *m, unsigned flags, struct buf *out);

/* True for a message type with no fields named "Empty" (our stand-in for
 * google.protobuf.Empty: the request body is ignored and the JSON reply is null). */
bool prpc_descriptor_is_empty(const ProtobufCMessageDescriptor *d);
