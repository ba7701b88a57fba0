#!/usr/bin/env python3
"""torch_reference.py: the Keras DDIM example's network and training step in PyTorch, the
yardstick that ddim-bench is compared with (tools/bench_gpu.sh runs both on one GPU).

Written from the Keras reference (../shared/reference/keras_ddim_example.py), not from the
C trainer: residual U-Net with widths [32, 64, 96, 128] and block depth 2, the sinusoidal
embedding of the noise variance, BatchNorm without center/scale (Keras momentum 0.99 is
torch's 0.01, epsilon 1e-3), swish, 2x2 average pooling, bilinear upsampling with
half-pixel centers (align_corners=False), concatenation, glorot-uniform kernels, zero
biases and a zero-initialized head. The step: normalize, draw noises and diffusion times,
mix, predict, MAE with Keras's gradient scaling (the tape differentiates the per-pixel
channel mean by its SUM), AdamW (lr 1e-3, weight decay 1e-4, eps 1e-7, decoupled decay
applied before the update as Keras does; torch puts eps after the bias correction, which
changes no timing), then an EMA (0.999) over the weights and the BatchNorm statistics.
Activations are channels_last (NHWC in memory, as the C trainer).

Timing: CUDA events between steps after a warm-up (host clock on CPU), no synchronization
between steps; the median of the timed steps. Peak memory: torch.cuda.max_memory_allocated
over the timed steps (reset after the warm-up), which counts the weights, optimizer and EMA
state that stay allocated, the activations and the cuDNN workspaces. Prints one JSON line.

  python3 tools/torch_reference.py --mode eager
  python3 tools/torch_reference.py --mode compile --batch 64 --steps 50
  python3 tools/torch_reference.py --device cpu --batch 4 --image-size 16 --widths 8,16
"""
import argparse
import copy
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    def __init__(self, cin, width, bn_momentum, bn_eps):
        super().__init__()
        self.skip = nn.Conv2d(cin, width, 1) if cin != width else None
        self.bn = nn.BatchNorm2d(cin, eps=bn_eps, momentum=bn_momentum, affine=False)
        self.conv1 = nn.Conv2d(cin, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        residual = x if self.skip is None else self.skip(x)
        h = F.silu(self.conv1(self.bn(x)))
        return self.conv2(h) + residual


class UNet(nn.Module):
    def __init__(self, widths, block_depth, embedding_dims=32, fmin=1.0, fmax=1000.0,
                 bn_momentum=0.01, bn_eps=1e-3):
        super().__init__()
        freqs = torch.exp(torch.linspace(math.log(fmin), math.log(fmax), embedding_dims // 2))
        self.register_buffer("angular_speeds", (2.0 * math.pi * freqs).view(1, -1, 1, 1),
                             persistent=False)
        self.stem = nn.Conv2d(3, widths[0], 1)
        c = widths[0] + embedding_dims
        self.down, skip_c = nn.ModuleList(), []
        for w in widths[:-1]:
            for _ in range(block_depth):
                self.down.append(ResidualBlock(c, w, bn_momentum, bn_eps))
                c = w
                skip_c.append(c)
        self.mid = nn.ModuleList()
        for _ in range(block_depth):
            self.mid.append(ResidualBlock(c, widths[-1], bn_momentum, bn_eps))
            c = widths[-1]
        self.up = nn.ModuleList()
        for w in reversed(widths[:-1]):
            for _ in range(block_depth):
                self.up.append(ResidualBlock(c + skip_c.pop(), w, bn_momentum, bn_eps))
                c = w
        self.head = nn.Conv2d(c, 3, 1)
        self.levels, self.block_depth = len(widths), block_depth
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # Keras: glorot_uniform kernels, zero biases
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.weight)  # kernel_initializer="zeros"

    def forward(self, noisy, variances):
        s = noisy.shape[-1]
        a = self.angular_speeds * variances  # (B, dims/2, 1, 1)
        e = torch.cat([torch.sin(a), torch.cos(a)], dim=1).expand(-1, -1, s, s)
        x = torch.cat([self.stem(noisy), e.to(noisy.dtype)], dim=1)
        x = x.contiguous(memory_format=torch.channels_last)
        skips, blocks = [], iter(self.down)
        for _ in range(self.levels - 1):
            for _ in range(self.block_depth):
                x = next(blocks)(x)
                skips.append(x)
            x = F.avg_pool2d(x, 2)
        for block in self.mid:
            x = block(x)
        blocks = iter(self.up)
        for _ in range(self.levels - 1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            for _ in range(self.block_depth):
                x = next(blocks)(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)


class Trainer:
    """The DiffusionModel's train_step on random images, state on one device."""

    def __init__(self, args, device):
        widths = [int(w) for w in args.widths.split(",")]
        self.device, self.args = device, args
        self.net = UNet(widths, args.block_depth).to(device, memory_format=torch.channels_last)
        self.ema_net = copy.deepcopy(self.net)
        for p in self.ema_net.parameters():
            p.requires_grad_(False)
        opt_kw = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=1e-4)
        if args.fused_adam:
            opt_kw["fused"] = True
        self.opt = torch.optim.AdamW(self.net.parameters(), **opt_kw)
        # Keras's EMA loop runs over network.weights: kernels, biases and BN statistics
        self.src = [t for t in self.net.parameters()] + [b for n, b in self.net.named_buffers()
                                                         if n.endswith(("running_mean",
                                                                        "running_var"))]
        self.dst = [t for t in self.ema_net.parameters()] + [
            b for n, b in self.ema_net.named_buffers() if n.endswith(("running_mean",
                                                                      "running_var"))]
        b, s = args.batch, args.image_size
        g = torch.Generator(device="cpu").manual_seed(args.seed)
        self.images = torch.rand(b, 3, s, s, generator=g).to(device)
        self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.mean = torch.full((1, 3, 1, 1), 0.5, device=device)  # of uniform [0, 1] images
        self.std = torch.full((1, 3, 1, 1), math.sqrt(1.0 / 12.0), device=device)
        self.start = math.acos(0.95)  # max_signal_rate
        self.end = math.acos(0.02)  # min_signal_rate
        self.trainable = sum(p.numel() for p in self.net.parameters())
        self.fwd_loss, self.update = self._fwd_loss, self._update
        self.update_compiled = False
        # CUDA graphs (reduce-overhead, max-autotune): each step must be marked, or a graph's
        # outputs are overwritten while the optimizer still reads them
        self.cudagraphs = args.mode == "compile" and args.compile_mode in (
            "reduce-overhead", "max-autotune")
        if args.mode == "compile":
            self.fwd_loss = torch.compile(self._fwd_loss, mode=args.compile_mode)
            # the optimizer step in the default mode: its in-place updates of parameters that
            # live outside the graph pools do not fit a CUDA graph
            self.update = torch.compile(self._update, mode="default")
            self.update_compiled = True

    def _fwd_loss(self, images, noises, times):
        x = (images - self.mean) / self.std.clamp_min(1e-7)  # Keras Normalization
        angles = self.start + times * (self.end - self.start)
        noise_rates, signal_rates = torch.sin(angles), torch.cos(angles)
        noisy = signal_rates * x + noise_rates * noises
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.args.bf16):
            pred_noises = self.net(noisy, noise_rates ** 2)
        pred_noises = pred_noises.float()
        pred_images = (noisy - noise_rates * pred_noises) / signal_rates
        per_pixel = (pred_noises - noises).abs().mean(dim=1)  # the channel mean, (B, S, S)
        image_loss = (pred_images - x).abs().mean()
        return per_pixel.sum(), per_pixel.detach().mean(), image_loss.detach()

    def _update(self):
        self.opt.step()
        torch._foreach_lerp_(self.dst, self.src, 1.0 - 0.999)  # ema + 0.001 * (w - ema)

    def step(self):
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        noises = torch.randn_like(self.images)
        times = torch.rand(self.args.batch, 1, 1, 1, device=self.device)
        loss, noise_loss, _ = self.fwd_loss(self.images, noises, times)
        loss.backward()
        try:
            self.update()
        except Exception as e:  # a torch whose compiler cannot take the optimizer
            if not self.update_compiled:
                raise
            print(f"torch_reference: compiled optimizer step failed ({type(e).__name__}: {e}); "
                  "running it eagerly", file=sys.stderr)
            self.update, self.update_compiled = self._update, False
            self.update()
        self.opt.zero_grad(set_to_none=True)
        # a copy: a CUDA graph's output is overwritten by the next step's replay
        return noise_loss.clone() if self.cudagraphs else noise_loss


def time_steps(trainer, steps, cuda):
    if cuda:
        events = [torch.cuda.Event(enable_timing=True) for _ in range(steps + 1)]
        torch.cuda.synchronize()
        events[0].record()
        for i in range(steps):
            loss = trainer.step()
            events[i + 1].record()
        torch.cuda.synchronize()
        return [events[i].elapsed_time(events[i + 1]) for i in range(steps)], loss
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = trainer.step()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms, loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--widths", default="32,64,96,128")
    ap.add_argument("--block-depth", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=True,
                    help="TF32 tensor cores for convolutions and matmuls (default on, as the "
                         "C trainer's cuDNN default)")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the network")
    ap.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True,
                    help="let cuDNN time its algorithms per shape (default on)")
    ap.add_argument("--fused-adam", action="store_true", help="AdamW(fused=True)")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode: default, reduce-overhead, max-autotune")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        ap.error("--steps >= 1, --warmup >= 0 and --batch >= 1")

    if args.mode == "compile" and args.warmup < 3:
        print("torch_reference: --mode compile warms up for at least 3 steps (the compiled "
              "optimizer step recompiles once its state exists)", file=sys.stderr)
        args.warmup = 3
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    trainer = Trainer(args, device)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        trainer.step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    warmup_s = time.perf_counter() - t0
    ms, loss = time_steps(trainer, args.steps, cuda)
    loss = float(loss)
    if not math.isfinite(loss):
        sys.exit(f"torch_reference: the noise loss is {loss}: the step is broken")
    median = statistics.median(ms)
    out = {
        "tool": "torch_reference", "mode": args.mode, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__, "batch": args.batch, "image_size": args.image_size,
        "widths": [int(w) for w in args.widths.split(",")], "block_depth": args.block_depth,
        "warmup": args.warmup, "steps": args.steps, "tf32": args.tf32, "bf16": args.bf16,
        "cudnn_benchmark": args.cudnn_benchmark, "fused_adam": args.fused_adam,
        "compile_mode": args.compile_mode if args.mode == "compile" else None,
        "cudagraph_mark_step_begin": trainer.cudagraphs,
        "update_compiled": trainer.update_compiled, "warmup_s": round(warmup_s, 3),
        "step_ms_median": round(median, 4), "step_ms_mean": round(statistics.fmean(ms), 4),
        "step_ms_min": round(min(ms), 4),
        "images_per_s": round(args.batch / (median * 1e-3), 2),
        "peak_mem_bytes": (torch.cuda.max_memory_allocated(device) if cuda
                           else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "peak_mem_kind": "max_memory_allocated" if cuda else "process peak resident set",
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device) if cuda else None,
        "trainable_params": trainer.trainable, "noise_loss": round(loss, 6),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
