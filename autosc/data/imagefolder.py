"""``imagefolder:PATH``: any folder of images in torchvision's ImageFolder layout, ``train/`` and ``val/``."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image
from torchvision import datasets

from ..errors import AutoscError
from .bundle import DataBundle
from .registry import LoadRequest, register_source
from .transforms import IMAGENET_STATS, transform_pair

USAGE = "imagefolder needs a folder: imagefolder:PATH with PATH/train/<class>/* and PATH/val/<class>/*"


@register_source("imagefolder", arg="PATH", usage=USAGE)
def load_imagefolder(request: LoadRequest) -> DataBundle:
    """Both splits of ``PATH`` with ImageNet's statistics; the class folders of train and val must agree."""
    path = Path(request.arg).expanduser()
    if not path.is_dir():
        raise AutoscError(f"imagefolder path {request.arg} does not exist or is not a folder")
    path = path.resolve()
    train, val = _split(path, "train"), _split(path, "val")
    if len(train.classes) < 2:
        raise AutoscError(f"{path}/train has only one class ({train.classes[0]}); a classifier needs at least two")
    if val.classes != train.classes:
        only_train = sorted(set(train.classes) - set(val.classes))[:3]
        only_val = sorted(set(val.classes) - set(train.classes))[:3]
        raise AutoscError(
            f"{path}/val classes differ from train classes (only in train: {only_train}, only in val: {only_val}); "
            "give both the same class folders"
        )
    train.transform, val.transform = transform_pair(request.size, None, IMAGENET_STATS, request.augment)
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


def _read_image(path: str) -> Image.Image:
    """torchvision's loader, with a corrupt, unreadable or oversized image as one line that names it.

    PIL refuses an image of over twice ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb: a small file that
    decodes to gigabytes) and only warns above it; both are refused here, since a warning in a data-loader worker
    goes unseen and a training image of ~90 megapixels is a mistake or an attack.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return datasets.folder.default_loader(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AutoscError(f"image {path} is too large to decode safely ({exc}); remove or shrink it") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises these for truncated or foreign files
        raise AutoscError(f"cannot read image {path} ({exc}); remove or replace it") from exc


def _split(path: Path, split: str) -> datasets.ImageFolder:
    """``path/split`` as an ImageFolder, with one-line errors for a missing folder or one without images."""
    folder = path / split
    if not folder.is_dir():
        raise AutoscError(f"{path} has no {split}/ folder; expected {path}/train/<class>/* and {path}/val/<class>/*")
    try:
        return datasets.ImageFolder(folder, loader=_read_image)
    except FileNotFoundError as exc:  # no class folders, or a class folder without images
        raise AutoscError(
            f"{folder} has no images in class sub-folders ({exc}); expected {folder}/<class>/*.jpg"
        ) from exc
