"""Data given in Python: the user's own ``Dataset`` s (or ``DataLoader`` s) as a :class:`DataBundle`.

Input size, channels and classes are read from the data, so a script passes only its datasets; each item
must be ``(image tensor C x H x W, int label)``, as torchvision datasets with ``ToTensor`` give.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import AutoscError
from .bundle import DataBundle

#: How ``data`` is recorded in run.json for data given in Python (a resumed run needs the datasets again).
PYTHON_DATA = "python"


def _dataset(data: Dataset | DataLoader, what: str) -> Dataset:
    if isinstance(data, DataLoader):
        return data.dataset
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise AutoscError(f"{what} must be a torch Dataset or DataLoader, got {type(data).__name__}")
    if len(data) == 0:
        raise AutoscError(f"{what} is empty")
    return data


def _item(dataset: Dataset, what: str) -> tuple[torch.Tensor, int]:
    item = dataset[0]
    ok = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], torch.Tensor)
    if not ok or item[0].dim() != 3 or not torch.is_floating_point(item[0]):
        shape = tuple(item[0].shape) if ok else type(item).__name__
        raise AutoscError(f"{what} must yield (float image tensor C x H x W, int label), its first item is {shape}")
    return item[0], int(item[1])


def _labels(dataset: Dataset) -> list[int]:
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return [int(t) for t in targets]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def from_datasets(train: Dataset | DataLoader, test: Dataset | DataLoader, *, name: str = PYTHON_DATA) -> DataBundle:
    """Both splits as a bundle; classes from ``classes`` / ``targets`` when the dataset has them, else its labels."""
    train_set, test_set = _dataset(train, "train_data"), _dataset(test, "test_data")
    x, _ = _item(train_set, "train_data")
    x_test, _ = _item(test_set, "test_data")
    if x.shape != x_test.shape:
        raise AutoscError(f"train_data images are {tuple(x.shape)} but test_data images are {tuple(x_test.shape)}")
    classes = getattr(train_set, "classes", None)
    labels = _labels(train_set)
    num_classes = len(classes) if classes is not None else max(labels) + 1
    if min(labels) < 0 or max(labels) >= num_classes:
        raise AutoscError(f"train_data labels must be 0 .. {num_classes - 1}, found {min(labels)} .. {max(labels)}")
    size = (int(x.shape[1]), int(x.shape[2]))
    return DataBundle(
        name=name,
        train=train_set,
        test=test_set,
        num_classes=num_classes,
        channels=int(x.shape[0]),
        native_size=size,
        source=f"{type(train_set).__name__} given in Python",
    )


__all__ = ["PYTHON_DATA", "from_datasets"]
