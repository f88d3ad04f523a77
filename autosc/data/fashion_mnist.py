"""Fashion-MNIST from its four idx files: Debian's ``dataset-fashion-mnist`` package, a ``data_root``, or a download."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from ..errors import AutoscError
from .bundle import DataBundle, TensorImages
from .registry import LoadRequest, cache_dir, register_source
from .transforms import Stats, transform_pair

#: where Debian's ``dataset-fashion-mnist`` package installs the gzipped idx files
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: per-channel mean and std of the training pixels in [0, 1]
FASHION_MNIST_STATS: Stats = ((0.2860,), (0.3530,))


@register_source("fashion-mnist")
def load_fashion_mnist(request: LoadRequest) -> DataBundle:
    """Both splits held in memory as uint8 tensors: 70,000 small images load in a second and index fast."""
    files = _find_files(request.data_root, request.download)
    train_x, train_y = _read_split(files, "train")
    test_x, test_y = _read_split(files, "test")
    native = (train_x.shape[2], train_x.shape[3])
    train_tf, test_tf = transform_pair(request.size, native, FASHION_MNIST_STATS, request.augment)
    return DataBundle(
        name="fashion-mnist",
        train=TensorImages(train_x, train_y, train_tf),
        test=TensorImages(test_x, test_y, test_tf),
        num_classes=10,
        channels=1,
        native_size=native,
        source=str(files[FASHION_MNIST_FILES["train"][0]].parent),
    )


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


def _find_files(data_root: str | None, download: bool) -> dict[str, Path]:
    """The idx files from ``data_root`` (flat or torchvision's layout) when given, else the system copy; else a download.

    A ``data_root`` that lacks the files is an error, not a silent fall-back to the system copy: the user named it.
    """
    folders = [Path(data_root), Path(data_root) / "FashionMNIST" / "raw"] if data_root else [SYSTEM_FASHION_MNIST]
    for folder in folders:
        files = _idx_folder(folder)
        if files:
            return files
    if download:
        root = Path(data_root) if data_root else cache_dir()
        try:
            datasets.FashionMNIST(root, train=True, download=True)
        except Exception as exc:  # network or disk trouble: one line, not a traceback
            raise AutoscError(f"downloading Fashion-MNIST into {root} failed: {type(exc).__name__}: {exc}") from exc
        files = _idx_folder(root / "FashionMNIST" / "raw")
        if files:
            return files
    where = f"{data_root} (or {data_root}/FashionMNIST/raw)" if data_root else "no --data-root"
    if data_root:
        raise AutoscError(
            f"Fashion-MNIST not found in {where}: it holds no train-images-idx3-ubyte(.gz) and the other 3 idx files; "
            "fix --data-root, leave it out to use the system copy (apt-get install dataset-fashion-mnist), or pass --download"
        )
    raise AutoscError(
        f"Fashion-MNIST not found in {where} nor {SYSTEM_FASHION_MNIST}: run 'apt-get install dataset-fashion-mnist', "
        "pass --data-root DIR holding train-images-idx3-ubyte(.gz) and the other 3 idx files, or pass --download"
    )


def _read_split(files: dict[str, Path], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, H, W) and labels of one split, checked against each other so a bad file fails here."""
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
