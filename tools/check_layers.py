#!/usr/bin/env python3
"""Fails when a file of corio includes a header of a higher layer.

The layers, lowest first (README, "Architecture"); a file may include
headers of its own layer and of lower ones only:

  0 base         corio/errors.hpp, corio/cancelled_error.hpp, corio/detail/; src/errors.cpp, src/detail/
  1 loop         corio/loop/, corio/io/; src/loop/, src/io/
  2 task         corio/task/, corio/time/; src/task/
  3 concurrency  corio/sync/, corio/flow/, corio/exec/; src/sync/, src/flow/, src/exec/
  4 io           corio/net/, corio/os/; src/net/, src/os/
  5 observe      corio/observe/, corio/pool/; src/observe/, src/pool/
  6 clients      corio/redis/, corio/pg/; src/redis/, src/pg/
  7 entry        corio/run.hpp, corio/corio.hpp

Usage: check_layers.py [repository root]. Prints each upward include and
exits 1 if there is any, or if a file is in no layer. `--self-test` checks
the checker on two small trees: one that must pass, one that must fail.
"""
import pathlib
import re
import sys

LAYERS = ["base", "loop", "task", "concurrency", "io", "observe", "clients", "entry"]

# Path prefixes, relative to include/ (public headers) or to src/ (private
# headers and sources); the longest matching prefix wins.
PUBLIC = {
    "corio/errors.hpp": 0,
    "corio/version.hpp": 0,
    "corio/cancelled_error.hpp": 0,
    "corio/detail/": 0,
    "corio/loop/": 1,
    "corio/io/": 1,
    "corio/task/": 2,
    "corio/time/": 2,
    "corio/sync/": 3,
    "corio/flow/": 3,
    "corio/exec/": 3,
    "corio/net/": 4,
    "corio/os/": 4,
    "corio/observe/": 5,
    "corio/pool/": 5,
    "corio/redis/": 6,
    "corio/pg/": 6,
    "corio/run.hpp": 7,
    "corio/runtime.hpp": 7,
    "corio/corio.hpp": 7,
}
PRIVATE = {
    "errors.cpp": 0,
    "detail/": 0,
    "loop/": 1,
    "io/": 1,
    "task/": 2,
    "sync/": 3,
    "flow/": 3,
    "exec/": 3,
    "net/": 4,
    "os/": 4,
    "observe/": 5,
    "pool/": 5,
    "redis/": 6,
    "pg/": 6,
    "runtime.cpp": 7,
}

INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^>"]+)[>"]', re.MULTILINE)


def layer_of(path, table):
    best = None
    for prefix, layer in table.items():
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return None if best is None else best[1]


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "include/corio/detail").mkdir(parents=True)
        (root / "include/corio/net").mkdir(parents=True)
        (root / "src/net").mkdir(parents=True)
        (root / "include/corio/detail/low.hpp").write_text("#include <vector>\n")
        (root / "include/corio/net/high.hpp").write_text('#include "corio/detail/low.hpp"\n')
        (root / "src/net/high.cpp").write_text('#include "corio/net/high.hpp"\n')
        if check(root) != 0:
            print("self-test: a tree whose includes point down was rejected")
            return 1
        (root / "include/corio/detail/low.hpp").write_text('#include "corio/net/high.hpp"\n')
        if check(root) != 1:
            print("self-test: an upward include was not caught")
            return 1
    print("check_layers self-test: passes a clean tree, catches an upward include")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    return check(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())


def check(root):
    files = [(p, p.relative_to(root / "include").as_posix(), PUBLIC)
             for p in sorted((root / "include").rglob("*.hpp"))]
    files += [(p, p.relative_to(root / "src").as_posix(), PRIVATE)
              for p in sorted((root / "src").rglob("*")) if p.suffix in (".hpp", ".cpp")]
    problems = []
    for path, name, table in files:
        own = layer_of(name, table)
        if own is None:
            problems.append(f"{path.relative_to(root)}: in no layer (add it to {__file__})")
            continue
        for included in INCLUDE.findall(path.read_text()):
            if included.startswith("corio/"):
                theirs = layer_of(included, PUBLIC)
            elif (root / "src" / included).exists():
                theirs = layer_of(included, PRIVATE)
            else:
                continue  # a system or third-party header
            if theirs is None:
                problems.append(f"{path.relative_to(root)}: includes {included}, in no layer")
            elif theirs > own:
                problems.append(
                    f"{path.relative_to(root)} ({LAYERS[own]}) includes {included} "
                    f"({LAYERS[theirs]}): a lower layer must not depend on a higher one")
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"check_layers: {len(files)} files, every include points down or sideways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
