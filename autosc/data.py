"""Datasets: one call turns a name into normalised train/test splits at the network's input size.

``load_data("fashion-mnist", input_size=(32, 32))`` reads the real Fashion-MNIST (Debian's
``dataset-fashion-mnist`` package, or a ``data_root``); ``cifar10``, ``cifar100`` and ``svhn`` are torchvision's
datasets under ``data_root``; ``imagefolder:PATH`` reads ``PATH/train/<class>/*`` and ``PATH/val/<class>/*``;
``synthetic`` is a small learnable stand-in for tests and dry runs. Nothing is downloaded unless ``download=True``.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset
from torchvision import datasets
from torchvision.transforms import v2

from .errors import AutoscError

#: accepted dataset names (``imagefolder:PATH`` takes a folder after the colon)
DATASETS: tuple[str, ...] = ("fashion-mnist", "cifar10", "cifar100", "svhn", "imagefolder:PATH", "synthetic")

#: where Debian's ``dataset-fashion-mnist`` package installs the gzipped idx files
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# per-channel mean and std of the training pixels in [0, 1]
FASHION_MNIST_STATS = ((0.2860,), (0.3530,))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

SYNTHETIC_CLASSES, SYNTHETIC_TRAIN, SYNTHETIC_TEST = 10, 512, 128

Stats = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass
class DataBundle:
    """Both splits of one dataset plus what a network needs to know about them (classes, channels)."""

    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    channels: int
    native_size: tuple[int, int]
    source: str

    def describe(self) -> str:
        """One line for logs: name, split sizes, classes, channels, native size and where it was read from."""
        h, w = self.native_size
        channels = f"{self.channels} channel" + ("s" if self.channels != 1 else "")
        return (
            f"{self.name}: {len(self.train)} train / {len(self.test)} test images, {self.num_classes} classes, "
            f"{channels}, native {h}x{w}, from {self.source}"
        )


def load_data(
    spec: str,
    *,
    input_size: tuple[int, int],
    data_root: str | None = None,
    subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    augment: bool = True,
    download: bool = False,
) -> DataBundle:
    """Load a dataset by name with SPEC §4's transforms for ``input_size`` (height, width).

    ``subset``/``test_subset`` keep a seeded random sample of that many items, so short runs see a fixed,
    representative slice; ``augment=False`` gives the training split the test transform.
    """
    size = _check_size(input_size)
    name = spec.strip()
    key = name.lower().replace("_", "-")
    if key.startswith("imagefolder:"):
        bundle = _imagefolder(name.split(":", 1)[1], size, augment)
    elif key == "fashion-mnist":
        bundle = _fashion_mnist(data_root, size, augment, download)
    elif key in _TORCHVISION:
        bundle = _torchvision(key, data_root, size, augment, download)
    elif key == "synthetic":
        bundle = _synthetic(size, seed)
    else:
        raise AutoscError(_unknown_message(name))
    bundle.train = _subset(bundle.train, subset, seed, f"the {bundle.name} train split", "subset")
    bundle.test = _subset(bundle.test, test_subset, seed, f"the {bundle.name} test split", "test_subset")
    return bundle


# ---------------------------------------------------------------------------------------------- arguments


def _check_size(input_size: tuple[int, int]) -> tuple[int, int]:
    ok = (
        isinstance(input_size, (tuple, list))
        and len(input_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)
    )
    if not ok:
        raise AutoscError(f"input_size must be (height, width) in positive pixels, got {input_size!r}")
    return int(input_size[0]), int(input_size[1])


def _unknown_message(name: str) -> str:
    if name.lower() == "imagefolder":
        return "imagefolder needs a folder: imagefolder:PATH with PATH/train/<class>/* and PATH/val/<class>/*"
    choices = [d.split(":")[0] for d in DATASETS]
    close = difflib.get_close_matches(name.lower().replace("_", "-"), choices, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown dataset {name!r}; {hint}accepted: {', '.join(DATASETS)}"


def _subset(dataset: Dataset, n: int | None, seed: int, what: str, option: str) -> Dataset:
    """A seeded random sample, sorted so reading stays sequential; the loader shuffles anyway."""
    if n is None:
        return dataset
    total = len(dataset)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= total:
        raise AutoscError(f"{option} must be an integer from 1 to {total} (the size of {what}), got {n!r}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, sorted(order[:n].tolist()))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autosc" / "data"


# ---------------------------------------------------------------------------------------------- transforms


def _transforms(
    size: tuple[int, int], native: tuple[int, int] | None, stats: Stats, *, train: bool, flip: bool = True
) -> v2.Compose:
    """SPEC §4 practice: pad-and-crop under 64 px (CIFAR style), random-resized-crop / centre-crop from 64 px."""
    h, w = size
    steps: list[v2.Transform] = [v2.ToImage()]
    if min(h, w) < 64:
        if native != size:
            steps.append(v2.Resize(size))
        if train:
            steps.append(v2.RandomCrop(size, padding=[max(2, w // 8), max(2, h // 8)]))
    elif train:
        steps.append(v2.RandomResizedCrop(size))
    else:
        steps += [v2.Resize(round(max(h, w) / 0.875)), v2.CenterCrop(size)]
    if train and flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([*steps, *_to_normalised_float(stats)])


def _to_normalised_float(stats: Stats) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(*stats), v2.ToPureTensor()]


def _pair(
    size: tuple[int, int], native: tuple[int, int] | None, stats: Stats, augment: bool, flip: bool = True
) -> tuple[v2.Compose, v2.Compose]:
    test = _transforms(size, native, stats, train=False)
    return (_transforms(size, native, stats, train=True, flip=flip) if augment else test), test


class _TensorImages(Dataset):
    """Images held as one uint8 tensor (N, C, H, W) in memory, transformed per item: fast for small datasets."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: v2.Transform) -> None:
        self.images, self.targets, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.targets[index])


# ---------------------------------------------------------------------------------------------- fashion-mnist


def _read_idx(path: Path) -> torch.Tensor:
    """Read one uint8 idx file (MNIST's format), gzipped or not.

    torchvision's ``read_image_file`` only takes uncompressed paths; parsing the few header bytes here reads
    Debian's .gz files straight into memory with no 47 MB cache to keep in step with its source.
    """
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise AutoscError(f"cannot read {path}: {exc}") from exc
    ndim = data[3] if len(data) >= 4 else 0
    if data[:3] != b"\x00\x00\x08" or not 1 <= ndim <= 3 or len(data) < 4 + 4 * ndim:
        raise AutoscError(f"{path} is not an idx file of unsigned bytes; replace it with the original download")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = memoryview(data)[4 + 4 * ndim :]
    if len(body) != math.prod(dims):
        raise AutoscError(
            f"{path} holds {len(body)} bytes where its header promises {math.prod(dims)}; it is truncated"
        )
    return torch.from_numpy(np.frombuffer(body, dtype=np.uint8).reshape(dims).copy())


def _idx_folder(folder: Path) -> dict[str, Path] | None:
    """The four Fashion-MNIST files in ``folder`` (uncompressed preferred, else .gz), or None if any is missing."""
    found = {}
    for stem in (*FASHION_MNIST_FILES["train"], *FASHION_MNIST_FILES["test"]):
        candidates = [folder / stem, folder / f"{stem}.gz"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        found[stem] = path
    return found


def _find_fashion_mnist(data_root: str | None, download: bool) -> dict[str, Path]:
    folders = [Path(data_root), Path(data_root) / "FashionMNIST" / "raw"] if data_root else []
    folders.append(SYSTEM_FASHION_MNIST)
    for folder in folders:
        files = _idx_folder(folder)
        if files:
            return files
    if download:
        root = Path(data_root) if data_root else _cache_dir()
        try:
            datasets.FashionMNIST(root, train=True, download=True)
        except Exception as exc:  # network or disk trouble: one line, not a traceback
            raise AutoscError(f"downloading Fashion-MNIST into {root} failed: {type(exc).__name__}: {exc}") from exc
        files = _idx_folder(root / "FashionMNIST" / "raw")
        if files:
            return files
    where = f"{data_root} (or {data_root}/FashionMNIST/raw)" if data_root else "no --data-root"
    raise AutoscError(
        f"Fashion-MNIST not found in {where} nor {SYSTEM_FASHION_MNIST}: run 'apt-get install dataset-fashion-mnist', "
        "pass --data-root DIR holding train-images-idx3-ubyte(.gz) and the other 3 idx files, or pass --download"
    )


def _fashion_split(files: dict[str, Path], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    image_stem, label_stem = FASHION_MNIST_FILES[split]
    images, labels = _read_idx(files[image_stem]), _read_idx(files[label_stem])
    if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels) or len(images) == 0:
        raise AutoscError(
            f"{files[image_stem]} and {files[label_stem]} do not match (images {tuple(images.shape)}, "
            f"labels {tuple(labels.shape)}); replace them with the original Fashion-MNIST files"
        )
    if int(labels.max()) >= 10:
        raise AutoscError(f"{files[label_stem]} has label {int(labels.max())}; Fashion-MNIST labels are 0-9")
    return images.unsqueeze(1), labels.long()


def _fashion_mnist(data_root: str | None, size: tuple[int, int], augment: bool, download: bool) -> DataBundle:
    files = _find_fashion_mnist(data_root, download)
    train_x, train_y = _fashion_split(files, "train")
    test_x, test_y = _fashion_split(files, "test")
    native = (train_x.shape[2], train_x.shape[3])
    train_tf, test_tf = _pair(size, native, FASHION_MNIST_STATS, augment)
    return DataBundle(
        name="fashion-mnist",
        train=_TensorImages(train_x, train_y, train_tf),
        test=_TensorImages(test_x, test_y, test_tf),
        num_classes=10,
        channels=1,
        native_size=native,
        source=str(files[FASHION_MNIST_FILES["train"][0]].parent),
    )


# ---------------------------------------------------------------------------------------------- torchvision sets


@dataclass(frozen=True)
class _TorchvisionSet:
    cls: type
    num_classes: int
    stats: Stats
    folder: str  # sub-folder of data_root the files live in ("" = data_root itself)
    files: tuple[str, ...]
    flip: bool = True


_TORCHVISION = {
    "cifar10": _TorchvisionSet(
        datasets.CIFAR10,
        10,
        CIFAR10_STATS,
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    ),
    "cifar100": _TorchvisionSet(datasets.CIFAR100, 100, CIFAR100_STATS, "cifar-100-python", ("train", "test", "meta")),
    "svhn": _TorchvisionSet(datasets.SVHN, 10, SVHN_STATS, "", ("train_32x32.mat", "test_32x32.mat"), flip=False),
}


def _layout(name: str, root: str) -> str:
    entry = _TORCHVISION[name]
    return (
        f"{root}/{entry.folder}/ with {', '.join(entry.files)}"
        if entry.folder
        else f"{root}/ with {' and '.join(entry.files)}"
    )


def _torchvision_root(name: str, data_root: str | None, download: bool) -> Path:
    """The folder to hand torchvision: checked first so a missing file is one clear line naming the layout."""
    entry = _TORCHVISION[name]
    if data_root is None and not download:
        raise AutoscError(
            f"{name} needs --data-root DIR holding {_layout(name, 'DIR')}, or --download to fetch it (needs internet)"
        )
    root = Path(data_root).expanduser() if data_root else _cache_dir()
    if entry.folder and root.name == entry.folder and not (root / entry.folder).is_dir():
        root = root.parent  # the user pointed at the unpacked folder itself
    missing = [f for f in entry.files if not (root / entry.folder / f).is_file()]
    if missing and not download:
        raise AutoscError(
            f"{name} not found: expected {_layout(name, str(root))} (missing {missing[0]}); "
            "fix --data-root, or pass --download to fetch it (needs internet)"
        )
    if name == "svhn" and importlib.util.find_spec("scipy") is None:
        raise AutoscError("reading SVHN's .mat files needs scipy: pip install scipy")
    return root


def _torchvision(name: str, data_root: str | None, size: tuple[int, int], augment: bool, download: bool) -> DataBundle:
    entry = _TORCHVISION[name]
    root = _torchvision_root(name, data_root, download)
    train_tf, test_tf = _pair(size, (32, 32), entry.stats, augment, flip=entry.flip)
    try:
        if name == "svhn":
            train = entry.cls(root, split="train", transform=train_tf, download=download)
            test = entry.cls(root, split="test", transform=test_tf, download=download)
        else:
            train = entry.cls(root, train=True, transform=train_tf, download=download)
            test = entry.cls(root, train=False, transform=test_tf, download=download)
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


# ---------------------------------------------------------------------------------------------- imagefolder


def _image_folder(path: Path, split: str) -> datasets.ImageFolder:
    folder = path / split
    if not folder.is_dir():
        raise AutoscError(f"{path} has no {split}/ folder; expected {path}/train/<class>/* and {path}/val/<class>/*")
    try:
        return datasets.ImageFolder(folder)
    except FileNotFoundError as exc:  # no class folders, or a class folder without images
        raise AutoscError(
            f"{folder} has no images in class sub-folders ({exc}); expected {folder}/<class>/*.jpg"
        ) from exc


def _imagefolder(raw_path: str, size: tuple[int, int], augment: bool) -> DataBundle:
    if not raw_path:
        raise AutoscError(_unknown_message("imagefolder"))
    path = Path(raw_path).expanduser()
    if not path.is_dir():
        raise AutoscError(f"imagefolder path {raw_path} does not exist or is not a folder")
    path = path.resolve()
    train, val = _image_folder(path, "train"), _image_folder(path, "val")
    if len(train.classes) < 2:
        raise AutoscError(f"{path}/train has only one class ({train.classes[0]}); a classifier needs at least two")
    if val.classes != train.classes:
        only_train = sorted(set(train.classes) - set(val.classes))[:3]
        only_val = sorted(set(val.classes) - set(train.classes))[:3]
        raise AutoscError(
            f"{path}/val classes differ from train classes (only in train: {only_train}, only in val: {only_val}); "
            "give both the same class folders"
        )
    train_tf, test_tf = _pair(size, None, IMAGENET_STATS, augment)
    train.transform, val.transform = train_tf, test_tf
    width, height = train.loader(train.samples[0][0]).size
    return DataBundle(
        name=f"imagefolder:{path}",
        train=train,
        test=val,
        num_classes=len(train.classes),
        channels=3,
        native_size=(height, width),  # of the first image; the others may differ, every one is resized
        source=str(path),
    )


# ---------------------------------------------------------------------------------------------- synthetic


def _synthetic(size: tuple[int, int], seed: int) -> DataBundle:
    """Ten classes, each a fixed random colour plus a random low-frequency pattern, under pixel noise.

    The colour makes a small CNN learn in an epoch or two (global pooling sees it); the pattern (a random 4x4
    image upsampled to ``size``) rewards spatial features; the noise keeps one pixel alone a poor guide.
    """
    h, w = size
    g = torch.Generator().manual_seed(seed)
    colours = torch.rand(SYNTHETIC_CLASSES, 3, 1, 1, generator=g)
    shapes = torch.rand(SYNTHETIC_CLASSES, 3, 4, 4, generator=g)
    patterns = F.interpolate(0.5 * colours + 0.5 * shapes, size=size, mode="bilinear")

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(n) % SYNTHETIC_CLASSES)[torch.randperm(n, generator=g)]
        pixels = 0.2 + 0.6 * patterns[labels] + 0.25 * torch.randn(n, 3, h, w, generator=g)
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8), labels

    (train_x, train_y), (test_x, test_y) = draw(SYNTHETIC_TRAIN), draw(SYNTHETIC_TEST)
    transform = v2.Compose([v2.ToImage(), *_to_normalised_float(IMAGENET_STATS)])  # made at input size: no resize
    return DataBundle(
        name="synthetic",
        train=_TensorImages(train_x, train_y, transform),
        test=_TensorImages(test_x, test_y, transform),
        num_classes=SYNTHETIC_CLASSES,
        channels=3,
        native_size=size,
        source="synthetic",
    )
