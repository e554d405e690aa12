/* The app's encrypted environment (interface; the decoder lands with its tests). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct appenv {
  char **envp;
  size_t n;
  char **dropped;
  size_t n_dropped;
};
int appenv_decrypt(const uint8_t env_key[32], const uint8_t *blob, size_t len,
                   const char *const *allowed, size_t n_allowed, struct appenv *ret, char *why,
                   size_t whylen);
void appenv_free(struct appenv *e);
