#!/usr/bin/env python3
"""draw_house.py: the include graph of the C sources, by layer (docs/design.md "The house").

Reads every #include "..." of src/base/, kernels/, comm/, io/, src/model/ and src/programs/
(and, in older checkouts, src/ and tools/), and draws
one box per unit (foo.c with foo.h), stacked by layer: the ground floor at the bottom, the
programs on top. An arrow A -> B is "A includes B". Arrows that run down are grey; an
arrow that runs up a floor or across between kernels/, comm/ and io/ is red: the build
refuses those now (tests/layering). With --dot it writes Graphviz's text, with --png it
runs Graphviz's `dot` (Debian: graphviz). It always prints the arrows between layers.

    python3 tools/draw_house.py --png docs/house_after.png
    git archive <commit> | tar -x -C /tmp/old && \\
        python3 tools/draw_house.py --root /tmp/old --png docs/house_before.png
"""
import argparse
import collections
import os
import re
import subprocess
import sys

# the floors, bottom up; the name of a unit's floor comes from its path (and, for the
# files that lived in src/ before src/base/ existed, from its name)
FLOORS = ["ground", "kernels", "comm", "io", "model", "programs"]
SIDE_BY_SIDE = {"kernels", "comm", "io"}  # one floor: none may include another
GROUND_NAMES = {"util", "backend", "rng", "optim_math", "params"}
DIRS = ["src/base", "kernels", "comm", "io", "src/model", "src/programs", "src", "tools"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def floor_of(path):
    d, name = os.path.split(path)
    unit = os.path.splitext(name)[0]
    if d == "src/base" or (d == "src" and unit in GROUND_NAMES):
        return "ground"
    if d in ("kernels", "comm", "io"):
        return d
    if d in ("tools", "src/programs") or unit.startswith("main_"):
        return "programs"
    return "model"


# drawing rows, bottom up: kernels/ and comm/ + io/ share a floor but take two rows
ROW = {"ground": 0, "comm": 1, "io": 1, "kernels": 2, "model": 3, "programs": 4}


def rank(floor):
    return 1 if floor in SIDE_BY_SIDE else {"ground": 0, "model": 2, "programs": 3}[floor]


def read_units(root):
    files = {}
    for d in DIRS:
        full = os.path.join(root, d)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            if os.path.splitext(name)[1] in (".c", ".h", ".cu"):
                files[os.path.join(d, name)] = open(os.path.join(full, name)).read()
    by_name = {}
    for path in files:
        by_name.setdefault(os.path.basename(path), path)
    unit = {p: os.path.splitext(p)[0] for p in files}
    edges = collections.Counter()
    for path, text in files.items():
        for inc in INCLUDE.findall(text):
            here = os.path.join(os.path.dirname(path), inc)
            target = here if here in files else by_name.get(os.path.basename(inc))
            if target and unit[target] != unit[path]:
                edges[(unit[path], unit[target])] += 1
    lines = collections.Counter()
    for path, text in files.items():
        lines[unit[path]] += text.count("\n")
    return lines, edges


def is_bad(a, b):
    fa, fb = floor_of(a + ".c"), floor_of(b + ".c")
    return rank(fa) < rank(fb) or (fa != fb and fa in SIDE_BY_SIDE and fb in SIDE_BY_SIDE)


def to_dot(lines, edges, title):
    # one row per floor, the programs on top: an arrow that points up stands out
    out = ["digraph house {", "  newrank=true; nodesep=0.06; ranksep=1.1; splines=true;",
           f'  label="{title}"; labelloc=t; fontsize=22; fontname="Helvetica";',
           '  node [shape=box, fontsize=10, fontname="Helvetica", style=filled, '
           'fillcolor="#f4f7fb", height=0.3, margin="0.04,0.02"];',
           '  edge [color="#00000038", arrowsize=0.4];']
    colour = {"ground": "#d9d2c5", "kernels": "#d8d0ea", "comm": "#ecdfc4",
              "io": "#cfe8cf", "model": "#c9d9ec", "programs": "#ecc9d1"}
    rows = collections.defaultdict(list)
    for floor in FLOORS:
        members = sorted(u for u in lines if floor_of(u + ".c") == floor)
        out.append(f'  subgraph cluster_{floor} {{ label="{floor}"; style=filled; '
                   f'color="{colour[floor]}"; fontsize=16;')
        for u in members:
            out.append(f'    "{u}" [label="{u}\\n{lines[u]}"];')
            rows[ROW[floor]].append(u)
        out.append("  }")
    for r, members in rows.items():
        out.append("  { rank=same; " + " ".join(f'"{u}";' for u in members) + " }")
    top = [rows[r][0] for r in sorted(rows, reverse=True)]
    for a, b in zip(top, top[1:]):
        out.append(f'  "{a}" -> "{b}" [style=invis, weight=0];')
    for (a, b), _ in sorted(edges.items()):
        style = ' [color="#d01010", penwidth=2.5, arrowsize=0.9, constraint=false]' if is_bad(
            a, b) else ""
        out.append(f'  "{a}" -> "{b}"{style};')
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".", help="the project's root (default .)")
    ap.add_argument("--title", default="ddim-dist: which file includes which, by layer")
    ap.add_argument("--dot", help="write Graphviz's text here")
    ap.add_argument("--png", help="draw it here with Graphviz's dot")
    a = ap.parse_args()
    lines, edges = read_units(a.root)
    between = collections.Counter()
    bad = []
    for (x, y) in edges:
        between[(floor_of(x + ".c"), floor_of(y + ".c"))] += 1
        if is_bad(x, y):
            bad.append(f"{x} -> {y}")
    print(f"units {len(lines)}, arrows {len(edges)}; between layers (A -> B: arrows):")
    for (fa, fb), n in sorted(between.items(), key=lambda kv: (FLOORS.index(kv[0][0]),
                                                               FLOORS.index(kv[0][1]))):
        if fa != fb:
            print(f"  {fa:8s} -> {fb:8s} {n:3d}{'   UP/ACROSS' if fa != fb and is_bad_floor(fa, fb) else ''}")
    print(f"arrows that run up or across: {len(bad)}")
    for b in sorted(bad):
        print("  " + b)
    dot = to_dot(lines, edges, a.title)
    if a.dot:
        open(a.dot, "w").write(dot)
    if a.png:
        subprocess.run(["dot", "-Tpng", "-Gdpi=80", "-o", a.png], input=dot.encode(), check=True)
    return 0


def is_bad_floor(fa, fb):
    return rank(fa) < rank(fb) or (fa in SIDE_BY_SIDE and fb in SIDE_BY_SIDE)


if __name__ == "__main__":
    sys.exit(main())
