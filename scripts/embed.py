#!/usr/bin/env python3
"""Turns a file into a C source holding its bytes: embed.py INPUT OUTPUT SYMBOL.
The build uses it for pages a daemon serves, so the binary needs no files beside it."""
import sys

src, dst, sym = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
with open(dst, "w") as f:
    f.write("/* Generated from %s by scripts/embed.py; do not edit. */\n" % src.split("/")[-1])
    f.write("#include <stddef.h>\n")
    f.write("const char %s[] = {\n" % sym)
    for i in range(0, len(data), 16):
        f.write("  " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    f.write("  0x00};\n")
    f.write("const size_t %s_len = %d;\n" % (sym, len(data)))
