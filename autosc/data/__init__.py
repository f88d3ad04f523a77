"""Datasets: one call turns a name into normalised train/test splits at the network's input size.

``load_data("fashion-mnist", input_size=(32, 32))`` reads the real Fashion-MNIST (Debian's
``dataset-fashion-mnist`` package, or a ``data_root``); ``cifar10``, ``cifar100`` and ``svhn`` are torchvision's
datasets under ``data_root``; ``imagefolder:PATH`` reads ``PATH/train/<class>/*`` and ``PATH/val/<class>/*``;
``synthetic`` is a small learnable stand-in for tests and dry runs. Nothing is downloaded unless ``download=True``.

Each source is a module that registers its loader with :func:`register_source`; ``load_data`` looks the name up.
"""

from __future__ import annotations

from pathlib import Path

# isort: off
# importing the sources registers them; this order is the order of DATASETS, in help and in error messages
from . import fashion_mnist, torchvision_sets, imagefolder, synthetic  # noqa: F401

# isort: on
from ..errors import AutoscError
from .bundle import DataBundle, split_validation, take_subset
from .python import PYTHON_DATA, from_datasets
from .registry import LoadRequest, dataset_names, find_source, register_source

__all__ = [
    "DATASETS",
    "PYTHON_DATA",
    "DataBundle",
    "LoadRequest",
    "from_datasets",
    "load_data",
    "register_source",
    "split_validation",
]

#: accepted dataset names (``imagefolder:PATH`` takes a folder after the colon), read off the registry
DATASETS: tuple[str, ...] = dataset_names()


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
    """Load a dataset by name with the transforms of docs/algorithm.md ("Training") for ``input_size`` (height, width).

    ``subset``/``test_subset`` keep a seeded random sample of that many items, so short runs see a fixed,
    representative slice; ``augment=False`` gives the training split the test transform.
    """
    size = _check_size(input_size)
    if data_root is not None and Path(data_root).expanduser().exists() and not Path(data_root).expanduser().is_dir():
        raise AutoscError(f"--data-root {data_root} is a file; give the folder that holds the dataset files")
    source, arg = find_source(spec.strip())
    request = LoadRequest(arg=arg, size=size, data_root=data_root, seed=seed, augment=augment, download=download)
    bundle = source.load(request)
    bundle.train = take_subset(bundle.train, subset, seed, f"the {bundle.name} train split", "subset")
    bundle.test = take_subset(bundle.test, test_subset, seed, f"the {bundle.name} test split", "test_subset")
    return bundle


def _check_size(input_size: tuple[int, int]) -> tuple[int, int]:
    """``input_size`` as two positive ints, or a one-line error: a float or a bare int is a common slip."""
    ok = (
        isinstance(input_size, (tuple, list))
        and len(input_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)
    )
    if not ok:
        raise AutoscError(f"input_size must be (height, width) in positive pixels, got {input_size!r}")
    return int(input_size[0]), int(input_size[1])
