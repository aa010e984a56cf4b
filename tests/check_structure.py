#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shape of src/, as plain tools would show it.

- No source file over MAX_LINES lines: a longer one holds more than one
  concern and should be split along that seam.
- No cycle between modules. A module is a header and the .c files that
  implement it (foo.h, foo.c, foo_*.c with an internal header); module A
  depends on B when any of A's files includes B's header. Dependencies must
  point one way, so the graph must be acyclic.

Usage: check_structure.py --srcdir DIR [--max-lines N]
"""

import argparse
import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path, headers):
    """foo_bar.{c,h} belongs to module foo when foo.h exists in the same
    folder (a module split over several files, with internal headers);
    otherwise it is a module of its own."""
    stem = path.stem
    folder = path.parent
    while "_" in stem:
        stem = stem.rsplit("_", 1)[0]
        if (folder, stem) in headers:
            return stem
    return path.stem


def find_cycle(graph):
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack = []

    def visit(n):
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m, BLACK) == GREY:
                return stack[stack.index(m):] + [m]
            if colour.get(m) == WHITE:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE:
            c = visit(n)
            if c:
                return c
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("--max-lines", type=int, default=650)
    args = ap.parse_args()
    src = Path(args.srcdir) / "src"
    files = sorted(p for p in src.rglob("*") if p.suffix in (".c", ".h"))
    failures = []

    for f in files:
        n = len(f.read_text(encoding="utf-8").splitlines())
        if n > args.max_lines:
            failures.append(f"{f.relative_to(src.parent)}: {n} lines (more than {args.max_lines})")

    headers = {(p.parent, p.stem) for p in files if p.suffix == ".h"}
    where = {p.name: p for p in files if p.suffix == ".h"}
    graph = {}
    for f in files:
        a = module_of(f, headers)
        graph.setdefault(a, set())
        for inc in INCLUDE.findall(f.read_text(encoding="utf-8")):
            h = where.get(Path(inc).name)
            if h is None:
                continue  # generated (rollguard-config.h) or a system header
            b = module_of(h, headers)
            if b != a:
                graph[a].add(b)
    cycle = find_cycle(graph)
    if cycle:
        failures.append("include cycle between modules: " + " -> ".join(cycle))

    for msg in failures:
        print("FAIL: " + msg)
    print(f"{len(files)} files, {len(graph)} modules, "
          f"{sum(len(v) for v in graph.values())} dependencies: "
          f"{'ok' if not failures else str(len(failures)) + ' problem(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
