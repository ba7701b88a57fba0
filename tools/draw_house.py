#!/usr/bin/env python3
"""draw_house.py: the include graph of the C sources, floor by floor (docs/design.md "The house").

Reads the floors from tests/layering/floors.txt (the file the layering check reads too) and
every #include "..." of their sources, and draws one box per unit (foo.c with foo.h, its
lines), one row per level of floors, the ground floor at the bottom and the programs on top.
An arrow A -> B is "A includes B": grey when it runs down or stays within a floor, red when
it runs up a level or across to another floor of the same level (tests/layering refuses
those). With --dot it writes Graphviz's text, with --png it runs Graphviz's `dot` (Debian:
graphviz). It always prints the arrows between floors.

    python3 tools/draw_house.py --png docs/house.png
"""
import argparse
import collections
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE = (".c", ".h", ".cu", ".cuh", ".cc")


def read_floors(root):
    """[(level, floor, members)] in file order, members: folders ('x/') or units."""
    floors = []
    for line in open(os.path.join(root, "tests/layering/floors.txt")):
        if line.startswith("#") or len(line.split()) < 3:
            continue
        level, floor, *members = line.split()
        floors.append((int(level), floor, members))
    return floors


class House:
    def __init__(self, root):
        self.level, self.folders, self.units, self.order = {}, {}, {}, []
        for level, floor, members in read_floors(root):
            self.level[floor] = level
            if floor not in self.order:
                self.order.append(floor)
            for m in members:
                (self.folders if m.endswith("/") else self.units)[m] = floor

    def floor_of(self, path):
        unit = os.path.splitext(path)[0]
        if unit in self.units:
            return self.units[unit]
        best = max((f for f in self.folders if path.startswith(f)), key=len, default=None)
        return self.folders.get(best)

    def breach(self, a, b):
        """'up', 'across' or '' for an arrow from floor a to floor b."""
        if self.level[b] > self.level[a]:
            return "up"
        return "across" if self.level[b] == self.level[a] and a != b else ""


def read_units(root, house):
    files = {}
    for folder in sorted(set(house.folders) | {os.path.dirname(u) + "/" for u in house.units}):
        full = os.path.join(root, folder)
        if folder == "tests/" or not os.path.isdir(full):
            continue  # the tests are programs too, but would only crowd the drawing
        for name in sorted(os.listdir(full)):
            if os.path.splitext(name)[1] in SOURCE:
                files[os.path.join(folder, name)] = open(os.path.join(full, name)).read()
    by_name = {}
    for path in files:
        by_name.setdefault(os.path.basename(path), path)
    unit = {p: os.path.splitext(p)[0] for p in files}
    edges, lines = collections.Counter(), collections.Counter()
    for path, text in files.items():
        lines[unit[path]] += text.count("\n")
        for inc in INCLUDE.findall(text):
            here = os.path.join(os.path.dirname(path), inc)
            target = here if here in files else by_name.get(os.path.basename(inc))
            if target and unit[target] != unit[path]:
                edges[(unit[path], unit[target])] += 1
    return lines, edges


def to_dot(house, lines, edges, title):
    out = ["digraph house {", "  newrank=true; nodesep=0.06; ranksep=0.9; splines=true;",
           f'  label="{title}"; labelloc=t; fontsize=22; fontname="Helvetica";',
           '  node [shape=box, fontsize=10, fontname="Helvetica", style=filled, '
           'fillcolor="#f4f7fb", height=0.3, margin="0.04,0.02"];',
           '  edge [color="#00000038", arrowsize=0.4];']
    palette = ["#d9d2c5", "#d8d0ea", "#ecdfc4", "#cfe8cf", "#c9d9ec", "#ecc9d1", "#dde8c9"]
    rows = collections.defaultdict(list)
    for i, floor in enumerate(house.order):
        members = sorted(u for u in lines if house.floor_of(u + ".c") == floor)
        if not members:
            continue
        out.append(f'  subgraph cluster_{floor.replace("-", "_")} {{ label="{floor} '
                   f'(level {house.level[floor]})"; style=filled; '
                   f'color="{palette[i % len(palette)]}"; fontsize=14;')
        for u in members:
            out.append(f'    "{u}" [label="{os.path.basename(u)}\\n{lines[u]}"];')
            rows[house.level[floor]].append(u)
        out.append("  }")
    for members in rows.values():
        out.append("  { rank=same; " + " ".join(f'"{u}";' for u in members) + " }")
    top = [rows[r][0] for r in sorted(rows, reverse=True)]
    for a, b in zip(top, top[1:]):
        out.append(f'  "{a}" -> "{b}" [style=invis, weight=0];')
    for (a, b), _ in sorted(edges.items()):
        bad = house.breach(house.floor_of(a + ".c"), house.floor_of(b + ".c"))
        style = ' [color="#d01010", penwidth=2.5, arrowsize=0.9, constraint=false]' if bad else ""
        out.append(f'  "{a}" -> "{b}"{style};')
    out.append("}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".", help="the project's root (default .)")
    ap.add_argument("--title", default="ddim-dist: which file includes which, floor by floor")
    ap.add_argument("--dot", help="write Graphviz's text here")
    ap.add_argument("--png", help="draw it here with Graphviz's dot")
    a = ap.parse_args()
    house = House(a.root)
    lines, edges = read_units(a.root, house)
    between, bad = collections.Counter(), []
    for x, y in edges:
        fx, fy = house.floor_of(x + ".c"), house.floor_of(y + ".c")
        if fx != fy:
            between[(fx, fy)] += 1
        if house.breach(fx, fy):
            bad.append(f"{x} -> {y} ({house.breach(fx, fy)})")
    print(f"units {len(lines)}, arrows {len(edges)}; between floors (A -> B: arrows):")
    for (fx, fy), n in sorted(between.items(), key=lambda kv: (-house.level[kv[0][0]],
                                                               -house.level[kv[0][1]])):
        print(f"  {fx:15s} -> {fy:15s} {n:3d}")
    print(f"arrows that run up or across: {len(bad)}")
    for b in sorted(bad):
        print("  " + b)
    dot = to_dot(house, lines, edges, a.title)
    if a.dot:
        open(a.dot, "w").write(dot)
    if a.png:
        subprocess.run(["dot", "-Tpng", "-Gdpi=72", "-o", a.png], input=dot.encode(), check=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
