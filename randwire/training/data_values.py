"""The data module's values, checked without torch or Lightning: :class:`randwire.training.data.ImageDataModule`
runs this check when it is built, and ``train.py`` runs it on the config before anything heavy loads, so a
bad ``data.*`` value is one line within about a second."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..models.errors import BadValue, ConfigError, is_int, require, require_choice

AUGMENT = ("none", "crop", "crop_flip", "imagenet")
# reading: what ImageDataModule takes where a data YAML leaves a key out (its Python API), defined once here so
# that the config check before torch loads and the module agree; conf/data/*.yaml name their own values.
IMAGE_DATA_DEFAULTS: dict[str, Any] = {
    "val_fraction": 0.1,
    "batch_size": 128,
    "num_workers": 0,
    "image_size": 32,
    "augment": "crop",
    "name": "data",
    "required": (),
    "download": False,
}


def check_data_values(
    *,
    batch_size: Any,
    num_workers: Any,
    image_size: Any,
    val_fraction: Any,
    augment: Any,
    name: str,
    has_val: bool,
    has_test: bool,
    root: Any,
    required: Sequence[str],
    download: bool,
    can_download: bool,
) -> None:
    require(is_int(batch_size) and batch_size >= 1, "batch_size", batch_size, "an integer >= 1")
    require(is_int(num_workers) and num_workers >= 0, "num_workers", num_workers, "an integer >= 0")
    require(is_int(image_size) and image_size >= 8, "image_size", image_size, "an integer >= 8 (pixels)")
    require(0 <= val_fraction < 1, "val_fraction", val_fraction, "a fraction in [0, 1)")
    require_choice("augment", augment, AUGMENT)
    if not has_val and not has_test:
        raise ConfigError(f"data={name} gives neither a val nor a test dataset: set data.val or data.test")
    if not required or download:  # torchvision fetches what is missing, where the network allows
        return
    if root in (None, "", "???"):
        raise BadValue("root", root, f"data={name} needs the path of a local {name} copy", verdict="is not allowed:")
    base = Path(str(root)).expanduser()
    missing = [base / r for r in required if not (base / r).is_dir()]
    if missing:
        layout = ", ".join(f"<root>/{r}/" for r in required)
        raise BadValue(
            "root",
            str(root),
            f"{missing[0]} does not exist (expected {layout}{'; or set data.download=true' if can_download else ''})",
            verdict="is not allowed:",
        )


def required_for(split: str, required: Sequence[str], has_val: bool, has_test: bool) -> list[str]:
    """The ``required`` folders that reading one split needs: a folder named after another split
    (``train/``) is left out, any other (``MNIST/raw``) kept. Val held out of train reads train; a test
    split that is val reads val's."""
    reads = {"train": {"train"}, "val": {"val"} if has_val else {"train"}}
    reads["test"] = {"test"} if has_test else reads["val"]
    return [r for r in required if Path(r).parts[0] not in ("train", "val", "test") or Path(r).parts[0] in reads[split]]


def check_data_cfg(data: Any) -> None:
    """The same check on the composed ``data`` config of :class:`~randwire.training.data.ImageDataModule` (other
    data modules check themselves when Hydra builds them); errors keyed ``data.*``."""
    if not isinstance(data, dict) or data.get("_target_") != "randwire.training.data.ImageDataModule":
        return
    train = data.get("train") or {}

    def value(key: str) -> Any:
        return data.get(key, IMAGE_DATA_DEFAULTS[key])

    try:
        check_data_values(
            batch_size=value("batch_size"),
            num_workers=value("num_workers"),
            image_size=value("image_size"),
            val_fraction=value("val_fraction"),
            augment=value("augment"),
            name=value("name"),
            has_val=data.get("val") is not None,
            has_test=data.get("test") is not None,
            root=data.get("root"),
            required=value("required") or (),
            download=bool(value("download")),
            can_download=isinstance(train, dict) and "download" in train,
        )
    except BadValue as err:
        raise err.under("data.") from None
    if isinstance(train, dict) and train.get("_target_") == "randwire.training.fashion_mnist.fashion_mnist":
        from .fashion_mnist import to_unpack

        to_unpack(train.get("source"), str(train.get("data_dir")))  # a missing file: one line, nothing written
