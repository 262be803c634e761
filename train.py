"""Train one RandWire network instance per seed; `-m seed=0,1,2,3,4` trains five and summarises them.

    python train.py                                            # embedded MNIST-5k, CPU, ~2 minutes
    python train.py graph=ba graph.m=5 regime=small experiment=cpu_budget -m seed=0,1,2,3,4
    python train.py experiment=paper_regular_c109 data.root=/datasets/imagenet -m seed=0,1,2,3,4
"""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from randwire.config import ConfigError
    from randwire.data import DataError
    from randwire.run import train

    try:
        metrics = train(cfg)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    return metrics.get("test/acc1")  # for Hydra sweepers that optimise a returned value


def _multirun_flag_first(argv: list[str]) -> list[str]:
    """`python train.py graph=ba -m seed=0,1` must work as written: argparse stops matching Hydra's
    positional overrides at the first option, so move -m/--multirun in front of them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in ("-m", "--multirun"))]


if __name__ == "__main__":
    sys.argv = _multirun_flag_first(sys.argv)
    main()
