#!/usr/bin/env python3
"""pass_bytes.py: the bytes one training step moves through the hand-written kernels (the
passes over activations and their gradients between cuDNN's convolutions), by kind of pass,
for the U-Net of src/model/unet.c at a given size, as the graph executor (graph_exec.c) runs
it now (fusion on, no zero-fill: GRAD_WRITE at a tensor's first contributor) and as it ran
before issue 18 (every node apart, the gradient arena zero-filled, every backward +=).

Each kernel is counted as the floats it reads and writes once (4 bytes each); cuDNN's
convolutions (their reads of x, w, dy and writes of y, dx, dw) are left out, as are the
per-channel statistics and everything of 3 channels or fewer per pixel (losses, data): the
table is about the element-wise passes issue 18 fuses or removes. docs/perf.md quotes it.

  python3 tools/pass_bytes.py                       # the seed: batch 64, 64x64, 32..128, depth 2
  python3 tools/pass_bytes.py --batch 8
"""
import argparse
from collections import defaultdict


def build(size, widths, depth, emb):
    """The U-Net as unet.c builds it: (kind, inputs, output) over tensors (pixels, channels)."""
    tensors, nodes = [], []

    def tensor(px, c):
        tensors.append((px, c))
        return len(tensors) - 1

    def node(kind, ins, px, c):
        out = tensor(px, c)
        nodes.append((kind, ins, out))
        return out

    x = tensor(size * size, 3)  # the input
    x = node("conv", [x], size * size, widths[0])
    e = node("embed", [], size * size, emb)
    x = node("concat", [x, e], size * size, widths[0] + emb)

    def block(x, w):
        px, c = tensors[x]
        res = node("conv", [x], px, w) if c != w else x
        h = node("bn", [x], px, c)
        h = node("conv", [h], px, w)
        h = node("swish", [h], px, w)
        h = node("conv", [h], px, w)
        return node("add", [h, res], px, w)

    skips = []
    for w in widths[:-1]:
        for _ in range(depth):
            x = block(x, w)
            skips.append(x)
        px, c = tensors[x]
        x = node("pool", [x], px // 4, c)
    for _ in range(depth):
        x = block(x, widths[-1])
    for w in reversed(widths[:-1]):
        px, c = tensors[x]
        x = node("upsample", [x], px * 4, c)
        for _ in range(depth):
            s = skips.pop()
            x = node("concat", [x, s], tensors[x][0], tensors[x][1] + tensors[s][1])
            x = block(x, w)
    x = node("conv", [x], tensors[x][0], 3)
    return tensors, nodes, x


def fusion(nodes, output):
    """graph_exec.c's plan: a conv whose only consumer is a swish, or an add whose other input
    is made before the conv, runs that node in its epilogue."""
    uses, user, maker = defaultdict(int), {}, {}
    for i, (kind, ins, out) in enumerate(nodes):
        for t in ins:
            uses[t] += 1
            user[t] = i
        maker[out] = i
    absorbed = {}
    for i, (kind, ins, out) in enumerate(nodes):
        if kind != "conv" or out == output or uses[out] != 1:
            continue
        j = user[out]
        ck, cins, _ = nodes[j]
        other = [t for t in cins if t != out]
        if ck == "swish" or (ck == "add" and other and maker.get(other[0], -1) < i):
            absorbed[i] = j
    return absorbed


def passes(tensors, nodes, output, fused, batch):
    """floats moved per kind of pass, forward and backward"""
    n = lambda t: tensors[t][0] * tensors[t][1] * batch
    absorbed = fusion(nodes, output) if fused else {}
    absorber = {j: i for i, j in absorbed.items()}
    moved = defaultdict(float)
    # forward
    for i, (kind, ins, out) in enumerate(nodes):
        if i in absorber:
            continue
        if kind == "conv":
            if tensors[out][1] <= 3:
                continue
            if i in absorbed:
                ck = nodes[absorbed[i]][0]
                key = "fwd bias+swish epilogue" if ck == "swish" else "fwd bias+residual epilogue"
                moved[key] += n(out) * 3  # read y, (read residual | write swish), write y
            else:
                moved["fwd bias add"] += 2 * n(out)
        elif kind == "bn":
            moved["fwd BN statistics"] += n(ins[0])
            moved["fwd BN apply"] += 2 * n(out)
        elif kind in ("swish", "add", "concat", "pool", "upsample"):
            moved["fwd " + kind] += sum(n(t) for t in ins) + n(out)
        elif kind == "embed":
            moved["fwd embedding (broadcast over pixels)"] += n(out)
    # backward: the first contributor (in reverse order) writes, the later ones add
    written = {output}
    if not fused:  # the arena zero-filled first, every contribution added
        grads = [t for t in range(len(tensors)) if t != 0 and nodes_make(nodes, t) != "embed"]
        moved["bwd zero-fill of the gradient arena"] += sum(n(t) for t in grads)
    for i in range(len(nodes) - 1, -1, -1):
        kind, ins, out = nodes[i]
        if kind == "embed":
            continue
        dy = out
        if i in absorbed and nodes[absorbed[i]][0] == "add":
            dy = nodes[absorbed[i]][2]
        store = []
        for t in ins:
            if t == 0 or nodes_make(nodes, t) == "embed":
                continue
            if i in absorber and kind == "add" and t == nodes[absorber[i]][2]:
                continue  # the fused conv reads the add's dy itself
            add = (t in written) or not fused
            written.add(t)
            store.append((t, add))
        if kind == "conv":
            if tensors[out][1] > 3:
                moved["bwd conv bias gradient (channel sums)"] += n(dy)
        elif kind == "bn":
            moved["bwd BN statistics"] += 2 * n(out)
            for t, add in store:
                moved["bwd BN apply"] += 2 * n(out) + n(t) * (2 if add else 1)
        elif kind == "swish":
            for t, add in store:
                moved["bwd swish"] += 2 * n(out) + n(t) * (2 if add else 1)
        elif kind == "add":
            reads = n(dy) if fused else n(dy) * len(store)  # one kernel, or one axpy each
            moved["bwd add"] += reads + sum(n(t) * (2 if add else 1) for t, add in store)
        elif kind in ("concat", "pool", "upsample"):
            moved["bwd " + kind] += sum(n(t) * (2 if add else 1) for t, add in store)
            moved["bwd " + kind] += n(out) if store else 0
    return moved


def nodes_make(nodes, t):
    for kind, _, out in nodes:
        if out == t:
            return kind
    return "input"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--widths", default="32,64,96,128")
    ap.add_argument("--block-depth", type=int, default=2)
    ap.add_argument("--embedding-dims", type=int, default=32)
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    tensors, nodes, output = build(a.image_size, widths, a.block_depth, a.embedding_dims)
    now = passes(tensors, nodes, output, True, a.batch)
    before = passes(tensors, nodes, output, False, a.batch)
    mb = lambda f: f * 4 / 1e6
    print(f"batch {a.batch}, {a.image_size}x{a.image_size}, widths {widths}, depth {a.block_depth}:"
          " MB moved per step by the hand-written passes")
    print(f"{'pass':42} {'now':>9} {'before':>9}")
    for key in sorted(set(now) | set(before), key=lambda k: (k[:3] != "fwd", -before.get(k, 0))):
        print(f"{key:42} {mb(now.get(key, 0)):9.1f} {mb(before.get(key, 0)):9.1f}")
    print(f"{'total':42} {mb(sum(now.values())):9.1f} {mb(sum(before.values())):9.1f}")


if __name__ == "__main__":
    main()
