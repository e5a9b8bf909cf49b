#!/usr/bin/env python3
"""Fails when the guide could rot: every C++ code block of docs/ must be a
snippet of an example that the build compiles and ctest runs.

Checks every Markdown file under docs/:
- a fenced block (```) names its language, and only shell, text, JSON or
  CMake may be written inline: C++ comes through `\\snippet FILE TAG` or
  `\\include FILE`;
- each FILE exists under examples/, each TAG marks a region there
  (`//! [TAG]` twice), and FILE is a source the examples' CMakeLists.txt
  builds (examples/guide/ files by their name in `corio_guide_examples`).

Usage: check_docs.py [repository root]; `--self-test` checks the checker.
"""
import re
import sys
import tempfile
from pathlib import Path

INLINE_LANGUAGES = {"sh", "bash", "console", "text", "json", "cmake", "ini"}
FENCE = re.compile(r"^\s*```(\S*)")
SNIPPET = re.compile(r"\\(snippet|include)(?:\{[^}]*\})?\s+(\S+)(?:\s+(\S+))?")


def built_sources(root):
    """The example sources some CMakeLists.txt under examples/ compiles."""
    built = set()
    for cmake in (root / "examples").rglob("CMakeLists.txt"):
        text = cmake.read_text()
        folder = cmake.parent.relative_to(root / "examples")
        for name in re.findall(r"[\w./-]+\.cpp", text):
            built.add((folder / name).as_posix())
        listed = re.search(r"set\(corio_guide_examples([^)]*)\)", text)
        if listed:
            for stem in listed.group(1).split():
                built.add((folder / f"{stem}.cpp").as_posix())
    return built


def check(root):
    problems = []
    built = built_sources(root)
    for md in sorted((root / "docs").rglob("*.md")):
        where = md.relative_to(root)
        in_fence = False
        for number, line in enumerate(md.read_text().splitlines(), 1):
            fence = FENCE.match(line)
            if fence:
                if not in_fence and fence.group(1).lower() not in INLINE_LANGUAGES:
                    language = fence.group(1) or "no language"
                    problems.append(f"{where}:{number}: a ``` block of {language}: C++ comes "
                                    "from a compiled example through \\snippet")
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for kind, name, tag in SNIPPET.findall(line):
                source = root / "examples" / name
                if not source.is_file():
                    problems.append(f"{where}:{number}: \\{kind} {name}: no such file in examples/")
                    continue
                if name not in built:
                    problems.append(f"{where}:{number}: {name} is not built by examples/")
                if kind == "snippet" and source.read_text().count(f"//! [{tag}]") != 2:
                    problems.append(f"{where}:{number}: {name} has no region //! [{tag}]")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "docs").mkdir()
        (root / "examples" / "guide").mkdir(parents=True)
        (root / "examples" / "guide" / "CMakeLists.txt").write_text(
            "set(corio_guide_examples\n  first\n)\n")
        (root / "examples" / "guide" / "first.cpp").write_text(
            "//! [hello]\nint x;\n//! [hello]\n")
        (root / "examples" / "guide" / "stray.cpp").write_text("//! [a]\n//! [a]\n")
        page = root / "docs" / "page.md"
        page.write_text("# P\n\\snippet guide/first.cpp hello\n```sh\nmake\n```\n")
        assert check(root) == [], check(root)
        page.write_text("# P\n```cpp\nint y;\n```\n\\snippet guide/first.cpp nope\n"
                        "\\snippet guide/stray.cpp a\n\\include guide/gone.cpp\n")
        found = check(root)
        assert len(found) == 4, found
    print("check_docs self-test: passes a clean guide, catches inline C++, a missing region, "
          "an unbuilt and a missing example")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        return 1
    pages = len(list((root / "docs").rglob("*.md")))
    print(f"check_docs: {pages} pages, every C++ block is a snippet of a built example")
    return 0


if __name__ == "__main__":
    sys.exit(main())
