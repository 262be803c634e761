"""Train one RandWire network instance per seed; `-m seed=0,1,2,3,4` trains five and summarises them.

python train.py                                            # embedded MNIST-5k, CPU, ~2 minutes
python train.py graph=ba graph.m=5 regime=small experiment=cpu_budget -m seed=0,1,2,3,4
python train.py experiment=paper_regular_c109 data.root=/datasets/imagenet -m seed=0,1,2,3,4
"""

import sys

import hydra
from omegaconf import DictConfig

from randwire.training import schema  # noqa: F401  (registers the config schemas before Hydra composes)
from randwire.training.cli import multirun_flag_first, report, run_app


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from randwire.models.errors import ConfigError
    from randwire.training.cli import discard_rejected_run, hand_over_interrupt, in_multirun, record_failed_job
    from randwire.training.errors import (
        CheckpointError,
        DataError,
        FolderInUse,
        RunInterrupted,
        TrainingDiverged,
        WriteError,
    )
    from randwire.training.run import train

    try:
        metrics = train(cfg, script=__file__)
    except RunInterrupted as err:  # checkpoint written: requeue (submitit) or exit; a sweep stops here too
        hand_over_interrupt(err)
    except FolderInUse as err:  # another live process runs in this folder: touch nothing of it; a sweep stops
        report(err)
    except (ConfigError, DataError, CheckpointError, TrainingDiverged, WriteError) as err:
        if not in_multirun():
            if not isinstance(err, TrainingDiverged):
                discard_rejected_run(cfg)
            report(err)
        record_failed_job(cfg, err)  # a sweep goes on: its siblings run, the summary lists this job
        return None
    except Exception as err:
        if not in_multirun():
            raise
        record_failed_job(cfg, err, traceback=True)
        return None
    return metrics.get(cfg.optimized_metric) if cfg.get("optimized_metric") else None  # for Hydra sweepers


if __name__ == "__main__":
    sys.argv = multirun_flag_first(sys.argv)
    run_app(main)
