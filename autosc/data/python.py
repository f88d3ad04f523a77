"""Data given in Python: the user's own ``Dataset`` s (or ``DataLoader`` s) as a :class:`DataBundle`.

Input size, channels and classes are read from the data, so a script passes only its datasets; each item
must be ``(image tensor C x H x W, int label)``, as torchvision datasets with ``ToTensor`` give.
"""

from __future__ import annotations

import numbers

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from ..errors import AutoscError
from .bundle import DataBundle, flatten_subsets

#: How ``data`` is recorded in run.json for data given in Python (a resumed run needs the datasets again).
PYTHON_DATA = "python"


def _dataset(data: Dataset | DataLoader, what: str) -> Dataset:
    """The map-style dataset behind ``data`` (a loader's own batching and sampling are not used: autosc batches
    and shuffles with its recipe)."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise AutoscError(
            f"{what} must be a map-style torch Dataset (or a DataLoader of one), got {type(dataset).__name__}"
        )
    if len(dataset) == 0:
        raise AutoscError(f"{what} is empty")
    return dataset


#: Items of each split read up front to check that every image has the first one's shape: reading them all would
#: read the whole data set before training; a spread sample catches a split of mixed sizes.
SAMPLE = 16


def _item(dataset: Dataset, what: str) -> tuple[torch.Tensor, int]:
    item = dataset[0]
    ok = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], torch.Tensor)
    if not ok or item[0].dim() != 3 or not torch.is_floating_point(item[0]):
        shape = tuple(item[0].shape) if ok else type(item).__name__
        raise AutoscError(f"{what} must yield (float image tensor C x H x W, int label), its first item is {shape}")
    return item[0], _label(item[1], what, 0)


def _same_size(dataset: Dataset, shape: torch.Size, what: str) -> None:
    """Every sampled image has ``shape``: a batch stacks its images, so one of another size fails training."""
    n = len(dataset)
    for i in sorted({round(k * (n - 1) / (SAMPLE - 1)) for k in range(SAMPLE)}):
        x = dataset[i][0]
        if not isinstance(x, torch.Tensor) or x.shape != shape:
            found = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise AutoscError(
                f"{what} images must all have one size: item 0 is {tuple(shape)}, item {i} is {found}; "
                "resize them to one size (e.g. torchvision.transforms.Resize)"
            )


def _label(value: object, what: str, index: int) -> int:
    """A class index: a Python, NumPy or 0-d integer tensor int; a float or text label is refused, not rounded."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        if not value.is_complex() and value.dtype != torch.bool:
            return int(value)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise AutoscError(
        f"{what} labels must be whole class indices (0 .. classes - 1); item {index}'s label is {repr(value)[:60]} "
        f"({type(value).__name__})"
    )


def _labels(dataset: Dataset, what: str) -> list[int]:
    """Every label, read from ``targets`` (through subsets, or a TensorDataset's second tensor) when there is one,
    else item by item."""
    base, indices = flatten_subsets(dataset)
    targets = getattr(base, "targets", None)
    if targets is None and isinstance(base, TensorDataset) and len(base.tensors) == 2:
        targets = base.tensors[1]
    if targets is None:
        return [_label(base[i][1], what, n) for n, i in enumerate(indices)]
    if isinstance(targets, torch.Tensor):  # one dtype for all: checked once
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise AutoscError(f"{what} labels must be whole class indices (0 .. classes - 1), not {targets.dtype}")
        targets = targets.reshape(-1).tolist()
    return [_label(targets[i], what, n) for n, i in enumerate(indices)]


def from_datasets(
    train: Dataset | DataLoader,
    test: Dataset | DataLoader,
    *,
    num_classes: int | None = None,
    name: str = PYTHON_DATA,
) -> DataBundle:
    """Both splits as a bundle; classes as given, else from ``classes``, else the largest training label + 1."""
    train_set, test_set = _dataset(train, "train_data"), _dataset(test, "test_data")
    x, _ = _item(train_set, "train_data")
    x_test, _ = _item(test_set, "test_data")
    if x.shape != x_test.shape:
        raise AutoscError(f"train_data images are {tuple(x.shape)} but test_data images are {tuple(x_test.shape)}")
    classes = getattr(train_set, "classes", None)
    _same_size(train_set, x.shape, "train_data")
    _same_size(test_set, x.shape, "test_data")
    labels, test_labels = _labels(train_set, "train_data"), _labels(test_set, "test_data")
    if num_classes is None:
        num_classes = len(classes) if classes is not None else max(labels) + 1
    for what, found in (("train_data", labels), ("test_data", test_labels)):
        if min(found) < 0 or max(found) >= num_classes:
            raise AutoscError(
                f"{what} labels must be 0 .. {num_classes - 1} ({num_classes} classes), found {min(found)} .. {max(found)}"
            )
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
