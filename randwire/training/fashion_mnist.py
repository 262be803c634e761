"""``data=fashion_mnist``: Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; 60,000 / 10,000 28² grayscale images of
10 clothing classes, harder than MNIST) from Debian's package, so a CPU user gets a real data set without a
download: ``apt-get install dataset-fashion-mnist`` puts the four ``*-ubyte.gz`` files in
``/usr/share/datasets/fashion-mnist``; ``data.root=<folder>`` reads the same files from elsewhere. They are
unpacked once under the project's data folder (``paths.data_dir``), never beside the package's files."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models.files import atomic_write
from .errors import DataError

DEBIAN = "/usr/share/datasets/fashion-mnist"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def to_unpack(source: str | None, data_dir: str) -> list[tuple[Path, Path]]:
    """(packed file, where it goes) for each of the four not unpacked yet; one line where the source lacks
    one. Torch-free: the config check runs it before the run writes anything (``data_values``)."""
    src = Path(source or DEBIAN)
    raw = Path(data_dir) / "FashionMNIST" / "raw"
    todo = [(src / f"{name}.gz", raw / name) for name in FILES if not (raw / name).is_file()]
    for packed, _ in todo:
        if not packed.is_file():
            raise DataError(
                f"data=fashion_mnist: {packed} is missing: apt-get install dataset-fashion-mnist (Debian/Ubuntu, "
                f"into {DEBIAN}), or give data.root=<a folder with the four *-ubyte.gz files>"
            )
    return todo


def unpack(source: str | None, data_dir: str) -> None:
    """The four files, gunzipped into ``<data_dir>/FashionMNIST/raw`` (torchvision's layout) where not there
    yet."""
    for packed, target in to_unpack(source, data_dir):
        with gzip.open(packed, "rb") as f:
            atomic_write(target, lambda out, f=f: shutil.copyfileobj(f, out))  # never a half-unpacked file


def fashion_mnist(
    source: str | None, data_dir: str, train: bool, transform: Callable | None = None, per_class: int | None = None
) -> Any:
    """torchvision's FashionMNIST on the unpacked files (``targets`` give the stratified val split);
    ``per_class``: the first that many images of each class only (a CPU-sized, balanced subset)."""
    import torch
    from torchvision.datasets import FashionMNIST

    unpack(source, data_dir)
    data = FashionMNIST(str(data_dir), train=train, transform=transform)
    if per_class is not None:
        keep = torch.cat([torch.nonzero(data.targets == c).flatten()[:per_class] for c in range(10)]).sort().values
        data.data, data.targets = data.data[keep], data.targets[keep]
    return data
