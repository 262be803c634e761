"""Issue 29 item 4: data=fashion_mnist from Debian's package files (or a folder with the same four files)."""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_NET

from randwire.training.errors import DataError
from randwire.training.fashion_mnist import DEBIAN, FILES, fashion_mnist


def _idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as Fashion-MNIST ships them (big-endian dims, unsigned bytes), gzipped."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _package(folder: Path, train: int = 40, test: int = 20) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split, n in (("train", train), ("t10k", test)):
        _idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return folder


def test_the_package_files_are_unpacked_under_the_data_folder_and_read(tmp_path):
    source = _package(tmp_path / "share")
    train = fashion_mnist(str(source), str(tmp_path / "data"), train=True)
    test = fashion_mnist(str(source), str(tmp_path / "data"), train=False)
    assert (len(train), len(test)) == (40, 20) and train.targets.tolist()[:3] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "data" / "FashionMNIST" / "raw").iterdir()) == sorted(FILES)
    assert sorted(p.name for p in source.iterdir()) == sorted(f"{f}.gz" for f in FILES)  # nothing beside them


def test_per_class_keeps_the_first_images_of_each_class(tmp_path):
    """experiment=cpu_study's balanced subset: the first ``per_class`` images of every class, in file order."""
    source = _package(tmp_path / "share")  # labels 0..9 repeating: images 0..9 are one of each class
    data = fashion_mnist(str(source), str(tmp_path / "data"), train=True, per_class=2)
    assert len(data) == 20 and data.targets.tolist() == list(range(10)) * 2


def test_a_missing_file_is_one_line_naming_the_package(tmp_path):
    source = _package(tmp_path / "share")
    (source / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz is missing: apt-get install dataset-fashion-mnist"):
        fashion_mnist(str(source), str(tmp_path / "data"), train=False)


def test_a_run_without_the_files_is_one_line_before_anything_is_written(tmp_path, compose_cfg):
    """The files are checked with the config, before the run folder holds anything (it held the graphs and
    the attempt record when the data module first found a file missing)."""
    from randwire.training.run import train

    empty = tmp_path / "share"
    empty.mkdir()
    data = ("data=fashion_mnist", f"data.root={empty}", f"paths.data_dir={tmp_path / 'data'}")  # nothing unpacked
    cfg = compose_cfg(*TINY_NET, *data, "logger=none", run_dir=tmp_path / "run")
    with pytest.raises(DataError) as info:
        train(cfg)
    assert str(info.value) == (
        f"data=fashion_mnist: {empty}/train-images-idx3-ubyte.gz is missing: apt-get install dataset-fashion-mnist "
        "(Debian/Ubuntu, into /usr/share/datasets/fashion-mnist), or give data.root=<a folder with the four "
        "*-ubyte.gz files>"
    )
    assert not (tmp_path / "run").exists()


def test_a_run_on_the_package_files_trains_with_a_stratified_val_split(tmp_path, compose_cfg):
    from randwire.training.run import train

    source = _package(tmp_path / "share", train=200, test=50)
    cfg = compose_cfg(
        *TINY_NET,
        "data=fashion_mnist",
        f"data.root={source}",
        "data.num_workers=0",
        "data.batch_size=20",
        f"paths.data_dir={tmp_path / 'data'}",
        "trainer.max_epochs=1",
        "logger=none",
        "callbacks=none",
        "extras.print_config=false",
        run_dir=tmp_path / "run",
    )
    metrics = train(cfg)
    assert metrics["status"] == "ok" and metrics["global_step"] == 9  # 180 of 200 images train (10% val), 20 a batch


def test_debians_package_has_the_60000_and_10000_images(tmp_path):
    """CI installs the package (where it is root) and requires this test; elsewhere it says why it skips."""
    if not Path(DEBIAN, f"{FILES[0]}.gz").is_file():
        why = f"no {DEBIAN} (apt-get install dataset-fashion-mnist)"
        if os.environ.get("RANDWIRE_REQUIRE_FASHION_MNIST") == "1":
            pytest.fail(f"RANDWIRE_REQUIRE_FASHION_MNIST=1 but {why}")
        pytest.skip(why)
    train = fashion_mnist(None, str(tmp_path), train=True)
    test = fashion_mnist(None, str(tmp_path), train=False)
    assert (len(train), len(test)) == (60000, 10000) and sorted(set(test.targets.tolist())) == list(range(10))
