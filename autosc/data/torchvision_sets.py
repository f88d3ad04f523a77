"""CIFAR-10, CIFAR-100 and SVHN through torchvision, from a ``data_root`` in torchvision's layout or a download.

The files are looked for before torchvision is called, so a missing one is one clear line naming the layout
expected, not torchvision's traceback.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchvision import datasets

from ..errors import AutoscError
from .bundle import DataBundle
from .registry import LoadRequest, cache_dir, register_source
from .transforms import Stats, transform_pair

# per-channel mean and std of the training pixels in [0, 1]
CIFAR10_STATS: Stats = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS: Stats = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS: Stats = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))

_TRAIN_FLAG: tuple[dict[str, Any], dict[str, Any]] = ({"train": True}, {"train": False})


@dataclass(frozen=True)
class _TorchvisionSet:
    """One torchvision dataset: its class, where its files live, and what sets it apart from the others."""

    cls: type
    num_classes: int
    stats: Stats
    folder: str  # sub-folder of data_root the files live in ("" = data_root itself)
    files: tuple[str, ...]
    flip: bool = True  # False for digits, which a mirror turns into other shapes
    splits: tuple[dict[str, Any], dict[str, Any]] = _TRAIN_FLAG  # torchvision's keywords for (train, test)
    requires: tuple[str, str] | None = None  # (module, message when it is missing)


_SETS = {
    "cifar10": _TorchvisionSet(
        datasets.CIFAR10,
        10,
        CIFAR10_STATS,
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    ),
    "cifar100": _TorchvisionSet(datasets.CIFAR100, 100, CIFAR100_STATS, "cifar-100-python", ("train", "test", "meta")),
    "svhn": _TorchvisionSet(
        datasets.SVHN,
        10,
        SVHN_STATS,
        "",
        ("train_32x32.mat", "test_32x32.mat"),
        flip=False,
        splits=({"split": "train"}, {"split": "test"}),
        requires=("scipy", "reading SVHN's .mat files needs scipy: pip install scipy"),
    ),
}


def _load(name: str, request: LoadRequest) -> DataBundle:
    """Both splits as torchvision datasets (read from disk per item) with the shared 32 px transforms."""
    entry = _SETS[name]
    root = _root(name, request.data_root, request.download)
    train_tf, test_tf = transform_pair(request.size, (32, 32), entry.stats, request.augment, flip=entry.flip)
    train_kw, test_kw = entry.splits
    try:
        train = entry.cls(root, **train_kw, transform=train_tf, download=request.download)
        test = entry.cls(root, **test_kw, transform=test_tf, download=request.download)
    except RuntimeError as exc:  # torchvision's "not found or corrupted": its md5 check failed
        raise AutoscError(
            f"{name} files in {root / entry.folder} fail torchvision's checksum (corrupt or partial?); "
            "delete them and pass --download, or copy them again"
        ) from exc
    except Exception as exc:  # download errors, unreadable pickles or .mat files
        raise AutoscError(f"reading {name} from {root} failed: {type(exc).__name__}: {exc}") from exc
    return DataBundle(
        name=name,
        train=train,
        test=test,
        num_classes=entry.num_classes,
        channels=3,
        native_size=(32, 32),
        source=str(root / entry.folder) if entry.folder else str(root),
    )


for _name in _SETS:
    register_source(_name)(functools.partial(_load, _name))


def _layout(name: str, root: str) -> str:
    """The files a set needs under ``root``, as error messages write them."""
    entry = _SETS[name]
    return (
        f"{root}/{entry.folder}/ with {', '.join(entry.files)}"
        if entry.folder
        else f"{root}/ with {' and '.join(entry.files)}"
    )


def _root(name: str, data_root: str | None, download: bool) -> Path:
    """The folder to hand torchvision: checked first so a missing file is one clear line naming the layout."""
    entry = _SETS[name]
    if data_root is None and not download:
        raise AutoscError(
            f"{name} needs --data-root DIR holding {_layout(name, 'DIR')}, or --download to fetch it (needs internet)"
        )
    root = Path(data_root).expanduser() if data_root else cache_dir()
    if entry.folder and root.name == entry.folder and not (root / entry.folder).is_dir():
        root = root.parent  # the user pointed at the unpacked folder itself
    missing = [f for f in entry.files if not (root / entry.folder / f).is_file()]
    if missing and not download:
        raise AutoscError(
            f"{name} not found: expected {_layout(name, str(root))} (missing {missing[0]}); "
            "fix --data-root, or pass --download to fetch it (needs internet)"
        )
    if entry.requires and importlib.util.find_spec(entry.requires[0]) is None:
        raise AutoscError(entry.requires[1])
    return root
