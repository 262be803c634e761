"""Does batching the nodes of one topological level into grouped convolutions pay off?

The nodes of a stage that share a topological level (longest path from the stage input) are independent:
their k ReLU→sep-conv→BN transforms can run as one depthwise conv over k·C channels, one 1×1 conv with
``groups=k`` and one BatchNorm over k·C channels — k times fewer kernel launches, the same arithmetic.
Before building that into the execution, this script measures it at the level of the node transforms, in
one process, on the real network's levels (WS(4, 0.75), N=32, C=78, seed 0; small regime at 224² or
``--regime lowres --size 32``):

- ``separate``: each node's transform on its own input tensor (what the fast execution runs);
- ``grouped``: one grouped transform on the level's inputs already concatenated along channels — the
  best case for batching (a real execution would also have to write the aggregations into that buffer
  and hand out channel slices), so a loss here is a loss in the execution too.

Both are checked to give the same outputs (fp32) and input gradients before timing; their timing rounds
are interleaved (as in bench_execution.py).

    python benchmarks/bench_level_batching.py --out benchmarks/results/level_batching_cpu
    python benchmarks/bench_level_batching.py --regime lowres --size 32 --out benchmarks/results/level_batching_cpu_lowres
    python benchmarks/bench_level_batching.py --device cuda --batch 256 --dtype bf16 --out results/level_batching_gpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._bench import device_missing, interleaved_medians, machine_description  # noqa: E402
from randwire import build_network  # noqa: E402
from randwire.models.layers import NodeTransform  # noqa: E402
from randwire.models.network import RandomStage  # noqa: E402


def topological_levels(stage: RandomStage) -> list[list[int]]:
    """Nodes grouped by :meth:`StageGraph.levels` (longest path from the stage input; 0: input-fed)."""
    level = stage.graph.levels()
    return [[v for v, lv in enumerate(level) if lv == i] for i in range(max(level) + 1)]


def grouped_transform(transforms: list[NodeTransform]) -> nn.Module:
    """One module computing k sep-conv transforms at once, with their weights (same results)."""
    k, t0 = len(transforms), transforms[0]
    c_in, c_out, stride = t0.c_in, t0.c_out, t0.stride
    dw = nn.Conv2d(k * c_in, k * c_in, 3, stride, 1, groups=k * c_in, bias=False)
    pw = nn.Conv2d(k * c_in, k * c_out, 1, groups=k, bias=False)
    bn = nn.BatchNorm2d(k * c_out)
    with torch.no_grad():
        dw.weight.copy_(torch.cat([t.conv_dw.weight for t in transforms]))
        pw.weight.copy_(torch.cat([t.conv_pw.weight for t in transforms]))
        bn.weight.copy_(torch.cat([t.bn.weight for t in transforms]))
        bn.bias.copy_(torch.cat([t.bn.bias for t in transforms]))
        bn.running_mean.copy_(torch.cat([t.bn.running_mean for t in transforms]))
        bn.running_var.copy_(torch.cat([t.bn.running_var for t in transforms]))
    return nn.Sequential(nn.ReLU(), dw, pw, bn)


def bench_stage(i: int, stage: RandomStage, hw: int, args, dtype) -> dict:
    dev, fmt = args.device, torch.channels_last
    levels = [lv for lv in topological_levels(stage) if len(lv) > 1]
    cases = []
    for lv in levels:
        transforms = [stage.nodes[v].transform for v in lv]
        t0 = transforms[0]
        size = hw if t0.stride == 2 else (hw - 1) // 2 + 1
        xs = [torch.randn(args.batch, t0.c_in, size, size, device=dev).contiguous(memory_format=fmt) for _ in lv]
        big = torch.cat(xs, 1).contiguous(memory_format=fmt)
        group = grouped_transform(transforms).to(dev, memory_format=fmt)
        cases.append((transforms, xs, big, group))

    def run(grouped: bool, train: bool):
        def fn():
            with torch.autocast(dev, dtype=dtype, enabled=dtype != torch.float32):
                for transforms, xs, big, group in cases:
                    if grouped:
                        outs = [group(big.requires_grad_(train))]
                    else:
                        outs = [t(x.requires_grad_(train)) for t, x in zip(transforms, xs)]
                    if train:
                        torch.autograd.backward([o.float().sum() for o in outs])

        return fn

    # same computation: outputs and input gradients of both, fp32, train mode
    for transforms, xs, big, group in cases:
        for t in transforms:
            t.train()
        group.train()
        xs_g = [x.detach().clone().requires_grad_() for x in xs]
        sep = torch.cat([t(x) for t, x in zip(transforms, xs_g)], 1)
        big_g = big.detach().clone().requires_grad_()
        grp = group(big_g)
        torch.testing.assert_close(grp, sep, rtol=1e-4, atol=1e-4)
        w = torch.randn_like(sep)
        (sep * w).sum().backward()
        (grp * w).sum().backward()
        torch.testing.assert_close(big_g.grad, torch.cat([x.grad for x in xs_g], 1), rtol=1e-3, atol=1e-4)

    row = {
        "stage": i + 1,
        "levels": [len(lv) for lv in topological_levels(stage)],
        "batched_nodes": sum(len(lv) for lv in levels),
        "nodes": len(stage.nodes),
    }
    for train in (False, True):
        for module in [m for case in cases for m in (*case[0], case[3])]:
            module.train(train)
        ctx = torch.enable_grad() if train else torch.no_grad()
        with ctx:
            fns = {"separate": run(False, train), "grouped": run(True, train)}
            for fn in fns.values():  # warm-up
                fn(), fn()
            ms = {name: 1e3 * t for name, t in interleaved_medians(fns, args.rounds, dev).items()}
        key = "train" if train else "infer"
        row[f"{key}_separate_ms"], row[f"{key}_grouped_ms"] = ms["separate"], ms["grouped"]
        row[f"{key}_speedup"] = ms["separate"] / ms["grouped"]
    print(
        f"  stage {i + 1}: levels {row['levels']}  infer {row['infer_separate_ms']:.1f} → "
        f"{row['infer_grouped_ms']:.1f} ms ({row['infer_speedup']:.2f}×)  train {row['train_separate_ms']:.1f} → "
        f"{row['train_grouped_ms']:.1f} ms ({row['train_speedup']:.2f}×)",
        flush=True,
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--regime", default="small", choices=["small", "lowres"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--c", type=int, default=78)
    ap.add_argument("--out", default=None, help="write the table (.md) and rows (.json) here")
    args = ap.parse_args()
    if device_missing(args.device):
        return 2
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    net = build_network(args.regime, graph="ws", n=32, c=args.c, seed=0, k=4, p=0.75).to(args.device)
    machine = machine_description(args.device)
    print(machine, flush=True)
    # stage 1 input: after conv1 and conv2 (stride 2 each in the small regime, stride 1 in lowres)
    hw = (args.size - 1) // 4 + 1 if args.regime == "small" else args.size
    rows = []
    for i, stage in enumerate(net.stages):
        rows.append(bench_stage(i, stage, hw, args, dtype))
        hw = (hw - 1) // 2 + 1
    tot = {
        k: sum(r[k] for r in rows)
        for k in ("infer_separate_ms", "infer_grouped_ms", "train_separate_ms", "train_grouped_ms")
    }
    lines = [
        f"Machine: {machine}; {args.regime} regime C={args.c} WS(4, 0.75) N=32, {args.size}², batch {args.batch}, "
        f"{args.dtype}, channels_last",
        "",
        "| stage | nodes per level | nodes batched | infer separate ms | infer grouped ms | × | train separate ms | train grouped ms | × |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['levels']} | {r['batched_nodes']}/{r['nodes']} | {r['infer_separate_ms']:.1f} | "
            f"{r['infer_grouped_ms']:.1f} | {r['infer_speedup']:.2f} | {r['train_separate_ms']:.1f} | "
            f"{r['train_grouped_ms']:.1f} | {r['train_speedup']:.2f} |"
        )
    lines.append(
        f"| all | | | {tot['infer_separate_ms']:.1f} | {tot['infer_grouped_ms']:.1f} | "
        f"{tot['infer_separate_ms'] / tot['infer_grouped_ms']:.2f} | {tot['train_separate_ms']:.1f} | "
        f"{tot['train_grouped_ms']:.1f} | {tot['train_separate_ms'] / tot['train_grouped_ms']:.2f} |"
    )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(table)
        out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
