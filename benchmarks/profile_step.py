"""Where a training step (or an inference pass) of the benchmark network spends its time: torch.profiler's
table of aten ops, for the execution chosen on the command line.

    python benchmarks/profile_step.py                                   # fast+channels_last, train, CPU
    python benchmarks/profile_step.py --mode reference --no-channels-last --what infer
    python benchmarks/profile_step.py --device cuda --batch 256 --dtype bf16 --out results/profile_gpu.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._bench import device_missing  # noqa: E402
from randwire import build_network  # noqa: E402
from randwire.models.execution import configure_execution  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--regime", default="small", choices=["small", "lowres"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--mode", default="fast", choices=["fast", "reference"])
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--what", default="train", choices=["train", "infer"])
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--out", default=None, help="also write the table here")
    args = ap.parse_args()
    if device_missing(args.device):
        return 2
    dev, dtype = args.device, torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    net = build_network(args.regime, graph="ws", n=32, c=78, seed=0, k=4, p=0.75).to(dev)
    with torch.no_grad():
        net(torch.randn(8, 3, args.size, args.size, device=dev))
    net = configure_execution(net, {"mode": args.mode, "channels_last": not args.no_channels_last})
    fmt = torch.contiguous_format if args.no_channels_last else torch.channels_last
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with torch.autocast(dev, dtype=dtype, enabled=dtype != torch.float32):
            if args.what == "infer":
                with torch.no_grad():
                    return net(x)
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.train(args.what == "train")
    for _ in range(3):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        if dev == "cuda":
            torch.cuda.synchronize()
    key = "cuda_time_total" if dev == "cuda" else "self_cpu_time_total"
    head = (
        f"{args.regime}@{args.size} batch {args.batch} {args.dtype} {args.mode}"
        f"{'' if args.no_channels_last else '+channels_last'} {args.what}, torch {torch.__version__}\n"
    )
    table = head + prof.key_averages().table(sort_by=key, row_limit=args.rows)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
