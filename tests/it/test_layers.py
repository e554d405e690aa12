"""The layer rules of docs/architecture.md, checked on the sources: which library may include
which, daemons never include another daemon's files, and every daemon header carries its
daemon's name. (All libraries share one include path, so the compiler would not notice.)"""
import pathlib
import re

from conftest import REPO

# What each library may include, besides itself (docs/architecture.md, "Layers").
ALLOWED = {
    "base": set(),
    "crypto": {"base"},
    "net": {"base"},
    "attest": {"base", "crypto"},
    "collateral": {"base", "crypto", "attest", "net"},
    "ratls": {"base", "crypto", "attest", "collateral", "net"},
    "daemon": {"base", "crypto", "attest", "collateral", "net", "ratls"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(folder):
    return sorted(p for p in folder.iterdir() if p.suffix in (".c", ".h"))


def includes(path):
    return INCLUDE.findall(path.read_text(errors="replace"))


def test_every_library_is_known():
    libs = {p.name for p in (REPO / "lib").iterdir() if p.is_dir()}
    assert libs == set(ALLOWED), "a library without a layer rule (add it here and to the docs)"


def test_libraries_include_only_lower_layers():
    bad = []
    for lib, allowed in ALLOWED.items():
        for f in sources(REPO / "lib" / lib):
            for inc in includes(f):
                top = inc.split("/")[0] if "/" in inc else None
                if top is None:
                    if not (f.parent / inc).exists():  # a generated header (proto) or stray
                        bad.append(f"{f.relative_to(REPO)}: \"{inc}\" is not a library header")
                elif top != lib and top not in allowed:
                    bad.append(f"{f.relative_to(REPO)}: includes {inc} ({lib} may use "
                               f"{sorted(allowed) or 'nothing of ours'})")
    assert not bad, "\n".join(bad)


def test_daemons_keep_to_their_folders():
    daemons = [p for p in (REPO / "src").iterdir() if p.is_dir()]
    names = {d.name for d in daemons}
    bad = []
    for d in daemons:
        for f in sources(d):
            if f.suffix == ".h" and f.stem != d.name and not f.stem.startswith(d.name + "_"):
                bad.append(f"{f.relative_to(REPO)}: a daemon header must be {d.name}_*.h")
            for inc in includes(f):
                if ".." in inc or inc.split("/")[0] in names:
                    bad.append(f"{f.relative_to(REPO)}: includes {inc} from outside its folder")
                elif "/" not in inc and not inc.endswith(".pb-c.h") and \
                        not (d / inc).exists():
                    bad.append(f"{f.relative_to(REPO)}: includes {inc}, not in {d.name}/")
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path):
    """The include pattern finds what it must (so the tests above can fail)."""
    p = tmp_path / "x.c"
    p.write_text('#include <stdio.h>\n  # include "net/http_server.h"\n#include "attest/quote.h"\n')
    assert includes(p) == ["net/http_server.h", "attest/quote.h"]
