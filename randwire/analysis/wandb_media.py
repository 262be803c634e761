"""The analyses' plots and tables in W&B (``--wandb``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def log_to_wandb(analysis: str, written: dict[str, Path], paths: list[str], project: str, out: Path) -> str | None:
    """Every PNG as a ``wandb.Image`` and every CSV as a ``wandb.Table`` in one W&B run (job type
    ``analysis``, tagged with the analysis), so the figures sit next to the training runs they came from.
    Offline without a login or a reachable server (as training runs); returns the run's folder."""
    import pandas as pd
    import wandb

    from ..training.loggers import wandb_mode

    mode = wandb_mode("auto", announce=True)
    if mode == "disabled":
        return None
    run = wandb.init(
        project=project,
        job_type="analysis",
        name=f"{analysis} {out.name}",
        tags=[f"analysis:{analysis}"],
        dir=str(out),
        mode=mode,
        config={"analysis": analysis, "inputs": [str(Path(p).resolve()) for p in paths]},
        reinit="finish_previous",
    )
    media: dict[str, Any] = {}
    for what, path in written.items():
        if path.suffix == ".png":
            media[f"{analysis}/plot_{path.stem}"] = wandb.Image(str(path))
        elif path.suffix == ".csv":  # by what it is: grid_pairs.csv is table_pairs (one word, as W&B's file names)
            media[f"{analysis}/table_{what}"] = wandb.Table(dataframe=pd.read_csv(path))
    run.log(media)
    folder = run.dir
    run.finish()
    return str(Path(folder).parent)
