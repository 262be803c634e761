"""Execution speed and memory of a RandWire network: the plain per-node loop vs the framework's execution.

One process, one network (same graphs, same weights) executed several ways. Every variant is first
checked against the reference (eval outputs and training gradients, fp32 tolerance), then timed: median
of ``--rounds`` after warm-up, the rounds interleaved across variants (this VM's speed drifts by 10-20%
over minutes), as images/s and as a ratio to the plain NCHW loop measured in this run.

    python benchmarks/bench_execution.py                       # CPU: small@224 (batch 32), lowres@32
    python benchmarks/bench_execution.py --compile             # also torch.compile variants (slow to build)
    python benchmarks/bench_execution.py --device cuda --batch 256 --dtype bf16 --compile
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._bench import device_missing, interleaved_medians, machine_description, strict_fp32  # noqa: E402
from randwire import build_network, complexity  # noqa: E402
from randwire.models.execution import configure_execution, memory_format_of  # noqa: E402
from randwire.training.memory import peak_memory_mb  # noqa: E402  (CUDA allocator peak; CPU glibc heap per op)

VARIANTS = {
    "reference": {"mode": "reference"},
    "reference+channels_last": {"mode": "reference", "channels_last": True},
    "fast": {"mode": "fast"},
    "fast+channels_last": {"mode": "fast", "channels_last": True},
    "fast+channels_last-no_bn_fold": {"mode": "fast", "channels_last": True, "fold_bn": False},
    "fast+channels_last-index_order": {"mode": "fast", "channels_last": True, "schedule": "index"},
    "fast+channels_last-unfused": {"mode": "fast", "channels_last": True, "fused_aggregation": False},
}
# Run in bf16 autocast when the run itself is fp32 (CPU): a precision change, reported as its own rows, its
# output error against the fp32 reference in its own column. The fp32 checks run the same execution in fp32.
BF16 = {
    "reference+bf16": {"mode": "reference", "dtype": "bf16"},
    "fast+channels_last+bf16": {"mode": "fast", "channels_last": True, "dtype": "bf16"},
}
COMPILED = {
    "fast+channels_last+compile": {"mode": "fast", "channels_last": True, "compile": True},
}
COMPILED_BF16 = {
    "fast+channels_last+bf16+compile": {"mode": "fast", "channels_last": True, "compile": True, "dtype": "bf16"},
}
CUDA_GRAPHS = {
    "fast+channels_last+compile+cudagraphs": {
        "mode": "fast",
        "channels_last": True,
        "compile": True,
        "compile_mode": "reduce-overhead",
    },
}


def make_step(net, x, y, dtype):
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _grads(net, x, y, fmt):
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x.contiguous(memory_format=fmt)), y).backward()
    grads = [p.grad.detach().clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    return grads


def check_agreement(ref, net, x, y, exact: bool, what: str = "both") -> tuple[float | None, float | None, float | None]:
    """Errors against the reference: fp32 eval outputs (max |Δ| / max |out|), fp32 training gradients
    (‖Δ‖ / ‖g‖ over all parameters) and, with ``exact``, fp64 gradients (worst parameter, ‖Δ‖ / ‖g‖).
    ``what`` (both | train | infer) checks only what is timed (None for the rest).

    fp32 gradients of two correct executions differ by up to ~1% on single parameters here (BatchNorm's
    backward subtracts nearly equal means on 7×7 maps), so the per-parameter check runs in fp64."""
    out_err = grad_err = exact_err = None
    if what != "train":
        ref.eval(), net.eval()
        with torch.no_grad():
            a, b = ref(x), net(x.contiguous(memory_format=_fmt(net)))
        out_err = ((a - b).abs().max() / a.abs().max()).item()
    if what == "infer":
        return out_err, grad_err, exact_err
    ref.train(), net.train()
    ga, gb = _grads(ref, x, y, torch.contiguous_format), _grads(net, x, y, _fmt(net))
    num = sum(((p - q) ** 2).sum() for p, q in zip(ga, gb)).sqrt()
    grad_err = (num / sum((p**2).sum() for p in ga).sqrt()).item()
    if exact:
        r64, n64 = copy.deepcopy(ref).double(), copy.deepcopy(net).double()
        x64 = x[:2].double()
        ga, gb = _grads(r64, x64, y[:2], torch.contiguous_format), _grads(n64, x64, y[:2], _fmt(n64))
        exact_err = max(((p - q).norm() / p.norm().clamp_min(1e-300)).item() for p, q in zip(ga, gb))
    return out_err, grad_err, exact_err


def check_compiled(base, ex, x, y, what: str) -> tuple[float | None, float | None]:
    """A compiled variant is checked in fp32 on its own compiled copy (CUDA graphs only replay kernels,
    so the check compiles without them): eval outputs and global gradient error against the reference.
    bf16 is no check at all here: the gradient at init is so ill-conditioned (BatchNorm cancellation)
    that two correct bf16 executions differ by ~70%."""
    check = dict(ex, compile_mode=None)
    net = configure_execution(copy.deepcopy(base), check)
    out_err, grad_err, _ = check_agreement(base, net, x, y, exact=False, what=what)
    return out_err, grad_err


def _fmt(net):
    """The memory format the network runs in (its first conv weight's)."""
    return memory_format_of(net.stem[0].conv.weight)


def bf16_output_error(base, net, x) -> float:
    """max |Δ| / max |out| of the network's bf16-autocast eval output against the fp32 reference's."""
    base.eval(), net.eval()
    with torch.no_grad():
        a = base(x)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            b = net(x.contiguous(memory_format=_fmt(net))).float()
    return ((a - b).abs().max() / a.abs().max()).item()


def prepare_variant(name, ex, base, x, y, xs, ys, args, device, dtype) -> dict:
    """Check a variant against the reference, then return its network and its two timed closures."""
    ex = dict(ex)
    if ex.pop("dtype", None) == "bf16":
        dtype = torch.bfloat16
    with strict_fp32():  # reading: the checks in true fp32 (TF32 convolutions are a GPU default)
        if ex.get("compile"):
            out_err, grad_err = check_compiled(base, ex, xs, ys, args.what)
            exact_err = None
        net = configure_execution(copy.deepcopy(base), dict(ex))
        if not ex.get("compile"):
            out_err, grad_err, exact_err = check_agreement(base, net, xs, ys, exact=True, what=args.what)
    low_err = (
        bf16_output_error(base, net, xs)
        if dtype == torch.bfloat16 and args.dtype == "fp32" and args.what != "train"
        else None
    )
    xin = x.contiguous(memory_format=_fmt(net))

    def infer():
        with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            net(xin)

    return {
        "name": name,
        "ex": ex,
        "net": net,
        "dtype": dtype,
        "infer": infer,
        "train": make_step(net, xin, y, dtype),
        "out_rel_err": out_err,
        "grad_rel_err": grad_err,
        "grad64_rel_err": exact_err,
        "bf16_out_rel_err": low_err,
    }


def time_interleaved(variants: list[dict], key: str, rounds: int, device: str) -> dict[str, float]:
    """Median seconds per call of every variant's ``key`` closure (:func:`interleaved_medians`), after a
    warm-up that drops a variant which fails (say, a compiler error) instead of hiding the others."""
    for v in variants:
        v["net"].train(key == "train")
    ok = []
    for v in variants:  # warm-up (and compilation)
        try:
            v[key](), v[key]()
            ok.append(v)
        except Exception as err:  # one broken variant (say, a compiler error) must not hide the others
            if v["name"] == "reference":
                raise
            print(f"  {v['name']} ({key}): FAILED {type(err).__name__}: {str(err)[:300]}", flush=True)
    return interleaved_medians({v["name"]: v[key] for v in ok}, rounds, device)


def bench_setting(regime: str, size: int, c: int, classes: int, args, device: str, dtype) -> list[dict]:
    torch.manual_seed(0)
    base = build_network(regime, graph="ws", n=32, c=c, seed=0, k=4, p=0.75, num_classes=classes).to(device)
    base.train()
    with torch.no_grad():  # non-trivial BN statistics, so BN folding is really exercised
        base(torch.randn(8, 3, size, size, device=device))
    cx = complexity(base, size)
    x = torch.randn(args.batch, 3, size, size, device=device)
    y = torch.randint(0, classes, (args.batch,), device=device)
    xs, ys = x[: min(8, args.batch)], y[: min(8, args.batch)]
    variants = dict(VARIANTS)
    if args.dtype == "fp32":
        variants.update(BF16)
    if args.compile and (not args.compile_settings or f"{regime}@{size}" in args.compile_settings.split(",")):
        variants.update(COMPILED)
        if args.dtype == "fp32":
            variants.update(COMPILED_BF16)
        if device == "cuda":
            variants.update(CUDA_GRAPHS)
    prepared = []
    for name, ex in variants.items():
        if args.only and name not in args.only and name != "reference":
            continue
        try:
            prepared.append(prepare_variant(name, ex, base, x, y, xs, ys, args, device, dtype))
        except Exception as err:
            if name == "reference":
                raise
            print(f"  {regime}@{size} {name}: FAILED {type(err).__name__}: {str(err)[:300]}", flush=True)
    timed = {
        key: time_interleaved(prepared, key, args.rounds, device) if args.what in ("both", key) else None
        for key in ("infer", "train")
    }
    rows = []
    for v in prepared:
        if any(t is not None and v["name"] not in t for t in timed.values()):
            continue  # failed in warm-up
        ex = v["ex"]
        v["net"].eval()
        # CUDA graphs keep their own memory pool, invisible to the allocator's peak; the CPU probe would
        # force a recompile of a compiled net; in bf16 on CPU it sees 1/4.6 of the fp32 peak, more than the
        # precision explains (part of oneDNN's bf16 work memory presumably bypasses malloc): not comparable.
        unseen = ex.get("compile_mode") == "reduce-overhead" or v["dtype"] != dtype
        mem_inf = None if unseen or timed["infer"] is None else peak_memory_mb(v["infer"], device)
        v["net"].train()
        mem_train = (
            None
            if unseen or timed["train"] is None or (device == "cpu" and ex.get("compile"))
            else peak_memory_mb(v["train"], device)
        )
        img_s = {k: None if t is None else args.batch / t[v["name"]] for k, t in timed.items()}
        row = {
            "setting": f"{regime}@{size}",
            "variant": v["name"],
            "batch": args.batch,
            "dtype": str(v["dtype"]).split(".")[-1],
            "infer_img_s": img_s["infer"],
            "train_img_s": img_s["train"],
            "infer_peak_mb": mem_inf,
            "train_peak_mb": mem_train,
            **{k: v[k] for k in ("out_rel_err", "grad_rel_err", "grad64_rel_err", "bf16_out_rel_err")},
            "flops_M": cx["flops"] / 1e6,
            "params_M": cx["params"] / 1e6,
        }
        rows.append(row)
        print(
            f"  {regime}@{size} {v['name']:40s} infer {_num(row['infer_img_s'], '8.1f')} img/s  train "
            f"{_num(row['train_img_s'], '8.1f')} img/s  mem {_num(mem_inf, '7.1f')} MB  err "
            f"{_num(row['out_rel_err'], '.1e')}/{_num(row['grad_rel_err'], '.1e')}/{_num(row['grad64_rel_err'], '.1e')}",
            flush=True,
        )
    if args.out:  # partial results survive a time-out of a later setting
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).with_suffix(".partial.json").write_text(json.dumps(rows, indent=1))
    ref = rows[0]
    for r in rows:
        for key in ("infer", "train"):
            r[f"{key}_ratio"] = r[f"{key}_img_s"] / ref[f"{key}_img_s"] if r[f"{key}_img_s"] else None
        r["infer_mem_ratio"] = (
            (r["infer_peak_mb"] / ref["infer_peak_mb"]) if r["infer_peak_mb"] and ref["infer_peak_mb"] else None
        )
    return rows


def _num(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def to_markdown(rows: list[dict], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| setting | variant | batch | dtype | infer img/s | × ref | train img/s | × ref | infer peak MB | × ref | train peak MB | out err fp32 | grad err fp32 | grad err fp64 | out err bf16 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['variant']} | {r['batch']} | {r['dtype']} | {_num(r['infer_img_s'], '.1f')} | "
            f"{_num(r['infer_ratio'], '.2f')} | {_num(r['train_img_s'], '.1f')} | {_num(r['train_ratio'], '.2f')} | "
            f"{_num(r['infer_peak_mb'], '.1f')} | {_num(r['infer_mem_ratio'], '.2f')} | {_num(r['train_peak_mb'], '.1f')} | "
            f"{_num(r['out_rel_err'], '.1e')} | {_num(r['grad_rel_err'], '.1e')} | "
            f"{_num(r['grad64_rel_err'], '.1e')} | {_num(r['bf16_out_rel_err'], '.1e')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--settings", default="small@224,lowres@32", help="regime@size, comma separated")
    ap.add_argument("--c", type=int, default=78)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="add torch.compile variants (CUDA graphs on GPU)")
    ap.add_argument("--compile-settings", default=None, help="restrict the compile variants to these settings")
    ap.add_argument("--only", nargs="*", default=None, help="variants to run besides the reference")
    ap.add_argument(
        "--what",
        default="both",
        choices=["both", "train", "infer"],
        help="time (and check) only this: halves the compilations of the compiled variants",
    )
    ap.add_argument("--out", default=None, help="write the table (.md) and rows (.json) here")
    args = ap.parse_args()
    if device_missing(args.device):
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    # fp32 agreement checks must be fp32: no TF32 convs/matmuls (timings use --dtype anyway)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    machine = machine_description(args.device)
    print(machine, flush=True)
    rows = []
    for setting in args.settings.split(","):
        regime, size = setting.split("@")
        rows += bench_setting(regime, int(size), args.c, 1000 if regime != "lowres" else 10, args, args.device, dtype)
    table = to_markdown(rows, machine)
    print(table)
    # fp32: eval outputs 1e-4, global gradient 1e-2 (BN cancellation, see check_agreement), fp64 1e-8;
    # bf16 outputs 5e-2 (8 mantissa bits through ~20 layers: a sanity bound, not a check of the execution).
    limits = {"out_rel_err": 1e-4, "grad_rel_err": 1e-2, "grad64_rel_err": 1e-8, "bf16_out_rel_err": 5e-2}
    bad = [r for r in rows if any(r[k] is not None and r[k] > lim for k, lim in limits.items())]
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(table)
        out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    if bad:
        print(
            f"error: {len(bad)} variant(s) disagree with the reference: {[r['variant'] for r in bad]}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
