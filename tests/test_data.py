"""Data: conf/data/*.yaml build one ImageDataModule; the embedded default, local torchvision layouts,
fixed splits and clear errors."""

import gzip
import struct

import numpy as np
import pytest
import torch

from randwire.models.errors import ConfigError
from randwire.training.config import build, compose_config
from randwire.training.data import mnist5k_arrays, stratified_split
from randwire.training.errors import DataError


def datamodule(*overrides: str):
    """The data module exactly as train.py builds it from conf/data (nothing loaded yet)."""
    return build("data", compose_config("train", list(overrides)).data)


def test_embedded_mnist5k_is_real_and_split_is_fixed():
    images, labels = mnist5k_arrays()
    assert images.shape == (5000, 28, 28) and 0 <= images.min() and images.max() == 1.0
    assert np.bincount(labels).tolist() == [500] * 10
    dm = datamodule("data.batch_size=64")
    dm.setup()
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sizes == {"train": 4000, "val": 500, "test": 500}
    test_labels = dm.datasets["test"].labels
    assert torch.bincount(test_labels).tolist() == [50] * 10  # stratified
    again = datamodule("data.batch_size=64")
    again.setup()
    assert torch.equal(again.datasets["test"].images, dm.datasets["test"].images)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (64, 1, 28, 28) and y.dtype == torch.int64
    # eval images are the stored digits, normalised, nothing else
    assert torch.allclose(x[0], (dm.datasets["test"].images[0] - 0.1307) / 0.3081, atol=1e-6)
    tr, va, te = stratified_split(labels, (0.1, 0.1))
    assert not (set(tr) & set(va)) and not (set(va) & set(te)) and len(tr) + len(va) + len(te) == 5000


def test_resize_for_stems_that_downsample_32x():
    dm = datamodule("data.batch_size=8", "data.image_size=64")
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
    dm = datamodule("data=mnist", f"data.root={tmp_path}", "data.batch_size=16", "data.num_workers=0")
    dm.setup()
    assert (len(dm.datasets["train"]), len(dm.datasets["val"]), len(dm.datasets["test"])) == (180, 20, 40)
    assert not set(dm.datasets["train"].indices) & set(dm.datasets["val"].indices)  # held out of train
    assert next(iter(dm.train_dataloader()))[0].shape == (16, 1, 28, 28)


def _image_folders(root, splits=("train", "val"), classes=("n01", "n02"), per_class=3):
    from PIL import Image

    for split in splits:
        for cls in classes:
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(np.full((40, 50, 3), 40 * i, np.uint8)).save(d / f"{i}.png")


def test_imagenet_class_folders(tmp_path):
    _image_folders(tmp_path)
    dm = datamodule(
        "data=imagenet",
        f"data.root={tmp_path}",
        "data.batch_size=2",
        "data.num_workers=0",
        "data.image_size=32",
        "data.num_classes=2",
    )
    dm.setup()
    assert len(dm.datasets["train"]) == 6 and dm.datasets["test"] is dm.datasets["val"] and dm.test_is_val
    assert next(iter(dm.val_dataloader()))[0].shape == (2, 3, 32, 32)
    bad = datamodule("data=imagenet", f"data.root={tmp_path}", "data.num_workers=0", "data.num_classes=1000")
    with pytest.raises(DataError, match="data.num_classes=1000 but data=imagenet has 2 classes"):
        bad.setup()


@pytest.mark.parametrize(
    "name,layout",
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("mnist", "MNIST/raw"),
        ("imagenet", "train"),
    ],
)
def test_missing_data_path_is_one_clear_line(tmp_path, name, layout):
    with pytest.raises(ConfigError, match=f"data.root='{tmp_path}' is not allowed: {tmp_path}/{layout} does not exist"):
        datamodule(f"data={name}", f"data.root={tmp_path}")
    with pytest.raises(ConfigError, match=f"data.root=None is not allowed: data={name} needs the path"):
        datamodule(f"data={name}")


def test_corrupt_cifar_folder_is_a_data_error(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    dm = datamodule("data=cifar10", f"data.root={tmp_path}", "data.num_workers=0")
    with pytest.raises(DataError, match="data=cifar10 at data.root=.* could not be read"):
        dm.setup()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_truncated_jpeg_is_named_by_its_path(tmp_path, workers, capfd):
    """Issue 9 item 8: was a 95-line worker traceback in epoch 0."""
    from randwire.training.run import train

    _image_folders(tmp_path / "data", per_class=4)
    for split in ("train", "val"):
        for png in (tmp_path / "data" / split).rglob("*.png"):
            from PIL import Image

            Image.open(png).convert("RGB").save(png.with_suffix(".JPEG"))
            png.unlink()
    bad = tmp_path / "data" / "train" / "n02" / "2.JPEG"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    args = [
        "data=imagenet",
        f"data.root={tmp_path / 'data'}",
        "data.num_classes=2",
        "data.image_size=16",
        "data.batch_size=4",
        f"data.num_workers={workers}",
        "graph.n=8",
        "regime=lowres",
        "regime.c=8",
        "regime.head_channels=32",
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        f"paths.output_dir={tmp_path / 'run'}",
    ]
    with pytest.raises(DataError) as info:
        train(compose_config("train", args))
    line = str(info.value)
    assert line.startswith(f"{bad}: unreadable image (OSError: ") and "truncated" in line.lower() and "\n" not in line
    assert line.endswith("fix or remove the file, or set data.skip_corrupt=true to skip such files")
    metrics = train(compose_config("train", [*args, "data.skip_corrupt=true", f"paths.output_dir={tmp_path / 'skip'}"]))
    assert metrics["status"] == "ok" and metrics["global_step"] == 2  # 8 training images, batch 4
    assert f"warning: skipped {bad}: unreadable image (OSError: " in capfd.readouterr().err


def test_channels_that_disagree_with_the_data_are_one_line():
    dm = datamodule("data.in_channels=3")
    with pytest.raises(DataError, match=r"^data.in_channels=3 but data=mnist5k images have 1 channels$"):
        dm.setup()


def test_evaluating_the_test_split_needs_only_its_folder(tmp_path):
    """Issue 17 item 6: a copy of val/ alone (ImageNet's test split) is enough to test a checkpoint."""
    import shutil

    from randwire.training.evaluate import evaluate
    from randwire.training.run import train

    _image_folders(tmp_path / "data")
    args = [
        "data=imagenet",
        f"data.root={tmp_path / 'data'}",
        "data.num_classes=2",
        "data.image_size=16",
        "data.batch_size=4",
        "data.num_workers=0",
        "graph.n=8",
        "regime=lowres",
        "regime.c=8",
        "regime.head_channels=32",
        "logger=none",
        "callbacks=default",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        f"paths.output_dir={tmp_path / 'run'}",
    ]
    metrics = train(compose_config("train", args))
    (tmp_path / "moved").mkdir()
    shutil.copytree(tmp_path / "data" / "val", tmp_path / "moved" / "val")  # no train/
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = evaluate(compose_config("evaluate", [f"ckpt={ckpt}", f"data.root={tmp_path / 'moved'}"]))
    assert result["samples"] == 6 and result["acc1"] == pytest.approx(metrics["test/acc1"])
    with pytest.raises(ConfigError, match=r"/moved/train does not exist"):  # the train split does need train/
        evaluate(compose_config("evaluate", [f"ckpt={ckpt}", "split=train", f"data.root={tmp_path / 'moved'}"]))


def test_the_training_order_is_a_function_of_seed_epoch_and_index():
    """Issue 16 item 4: an epoch's order and each sample's augmentation seed come from (seed, epoch, index)
    alone; a skip starts mid-epoch exactly where the uninterrupted order is; DDP ranks split one order."""
    from randwire.training.data_order import EpochOrder

    data = list(range(10))
    order = EpochOrder(data, seed=3).order(0)
    assert sorted(i for i, _ in order) == data  # a permutation
    assert order == EpochOrder(data, seed=3).order(0)
    assert [i for i, _ in order] != [i for i, _ in EpochOrder(data, seed=3).order(1)]
    assert [i for i, _ in order] != [i for i, _ in EpochOrder(data, seed=4).order(0)]
    # a sample keeps its augmentation seed wherever the order puts it; epochs draw new ones
    seeds0, seeds1 = dict(order), dict(EpochOrder(data, seed=3).order(1))
    assert all(seeds0[i] != seeds1[i] for i in data)
    sampler = EpochOrder(data, seed=3)
    sampler.resume_at = (0, 4)  # a run resumed after 4 samples of epoch 0 (ResumeOrder sets it)
    assert list(sampler) == order[4:] and sampler.drawn == (0, 4)
    sampler.set_epoch(1)
    assert list(sampler) == EpochOrder(data, seed=3).order(1) and sampler.drawn == (1, 0)  # epoch 1 whole
    ranks = [EpochOrder(data, seed=3, num_replicas=3, rank=r) for r in range(3)]
    parts = [list(r) for r in ranks]
    assert [len(p) for p in parts] == [4, 4, 4]  # 10 padded to 12, as torch's DistributedSampler does
    assert sorted(i for p in parts for i, _ in p) == sorted([*data, order[0][0], order[1][0]])


def test_a_sample_is_augmented_the_same_whatever_was_drawn_before():
    """The augmentation of a sample depends on its seed only, not on the global torch state (which worker
    reads it, what dropout drew), and reading it leaves that state as it was."""
    from randwire.training.data import TensorImages, image_transform
    from randwire.training.data_order import SeededSamples

    images = TensorImages(
        torch.rand(4, 3, 16, 16),
        torch.arange(4),
        list("abcd"),
        image_transform("crop_flip", 16, 16, None, None, train=True),
    )
    seeded = SeededSamples(images)
    torch.manual_seed(0)
    first = seeded[(2, 12345)][0]
    state = torch.get_rng_state()
    torch.rand(100)  # another history
    again = seeded[(2, 12345)][0]
    assert torch.equal(first, again)
    other = [seeded[(2, s)][0] for s in range(8)]
    assert any(not torch.equal(first, x) for x in other)  # the seed does choose the crop
    torch.set_rng_state(state)
    before = torch.get_rng_state()
    seeded[(1, 7)]
    assert torch.equal(torch.get_rng_state(), before)
    assert seeded[3][1] == 3 and len(seeded) == 4  # evaluation's plain indices read as they are
