"""Data modules: the embedded default, local torchvision layouts, fixed splits and clear errors."""

import gzip
import struct

import numpy as np
import pytest
import torch

from randwire.config import ConfigError, check_data_path
from randwire.data import DataError, RandWireDataModule, mnist5k_arrays, stratified_split


def test_embedded_mnist5k_is_real_and_split_is_fixed():
    images, labels = mnist5k_arrays()
    assert images.shape == (5000, 28, 28) and 0 <= images.min() and images.max() == 1.0
    assert np.bincount(labels).tolist() == [500] * 10
    dm = RandWireDataModule({"name": "mnist5k", "batch_size": 64, "num_workers": 0, "image_size": 28})
    dm.setup()
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sizes == {"train": 4000, "val": 500, "test": 500}
    test_labels = dm.datasets["test"].labels
    assert torch.bincount(test_labels).tolist() == [50] * 10  # stratified
    again = RandWireDataModule({"name": "mnist5k", "batch_size": 64, "num_workers": 0, "image_size": 28})
    again.setup()
    assert torch.equal(again.datasets["test"].images, dm.datasets["test"].images)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (64, 1, 28, 28) and y.dtype == torch.int64
    tr, va, te = stratified_split(labels, (0.1, 0.1))
    assert not (set(tr) & set(va)) and not (set(va) & set(te)) and len(tr) + len(va) + len(te) == 5000


def test_resize_for_stems_that_downsample_32x():
    dm = RandWireDataModule({"name": "mnist5k", "batch_size": 8, "num_workers": 0, "image_size": 64})
    dm.setup()
    assert next(iter(dm.train_dataloader()))[0].shape == (8, 1, 64, 64)


def _write_idx(path, array, magic):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes())


def test_local_mnist_in_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 40)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), 2051)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8), 2049)
    for f in raw.iterdir():  # torchvision reads the unpacked files
        (raw / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    cfg = {"name": "mnist", "root": str(tmp_path), "batch_size": 16, "num_workers": 0, "image_size": 28}
    check_data_path(cfg)
    dm = RandWireDataModule(cfg)
    dm.setup()
    assert (len(dm.datasets["train"]), len(dm.datasets["val"]), len(dm.datasets["test"])) == (180, 20, 40)
    assert next(iter(dm.train_dataloader()))[0].shape == (16, 1, 28, 28)


def test_imagenet_class_folders(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(d / f"{i}.png")
    cfg = {"name": "imagenet", "root": str(tmp_path), "batch_size": 2, "num_workers": 0, "image_size": 32, "num_classes": 2}
    check_data_path(cfg)
    dm = RandWireDataModule(cfg)
    dm.setup()
    assert len(dm.datasets["train"]) == 6 and dm.datasets["test"] is dm.datasets["val"]
    assert next(iter(dm.val_dataloader()))[0].shape == (2, 3, 32, 32)
    bad = RandWireDataModule({**cfg, "num_classes": 1000})
    with pytest.raises(DataError, match="data.num_classes=1000 but .* has 2 class folders"):
        bad.setup()


@pytest.mark.parametrize("name,layout", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
                                         ("mnist", "MNIST/raw"), ("imagenet", "train")])
def test_missing_data_path_is_one_clear_line(tmp_path, name, layout):
    with pytest.raises(ConfigError, match=f"data.root='{tmp_path}' is not allowed: {tmp_path}/{layout} does not exist"):
        check_data_path({"name": name, "root": str(tmp_path)})
    with pytest.raises(ConfigError, match=f"data.root=None is not allowed: data={name} needs the path"):
        check_data_path({"name": name, "root": None})


def test_corrupt_cifar_folder_is_a_data_error(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    dm = RandWireDataModule({"name": "cifar10", "root": str(tmp_path), "batch_size": 4, "num_workers": 0, "image_size": 32})
    with pytest.raises(DataError, match="data=cifar10 at data.root=.* could not be read"):
        dm.setup()
