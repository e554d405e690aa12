/* tboot's entry point. */
#include <stdio.h>

#include "tboot.h"

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("tboot %s\n", tboot_version());
  return 0;
}
