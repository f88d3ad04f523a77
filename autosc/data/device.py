"""Device-resident data: a split held as one uint8 tensor on the training device, transformed by whole batches.

Per-image Python transforms in the main process cost ~30 ms per batch of 128 and leave an accelerator idle
(benchmarks/RESULTS.md, "Training throughput at the hardware's limit"). For a split that fits in memory (or an image folder,
decoded once) and whose transform is the shared one (autosc/data/transforms.py), the same steps run here on a
batch at once: the deterministic resize once for the whole split, then the random crop, flip and normalisation per batch. The
random draws of one epoch come from a generator seeded by the epoch, drawn for the whole epoch up front, so a
run resumed mid-epoch sees exactly the batches it would have seen (docs/algorithm.md, "Throughput").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..errors import AutoscError
from .bundle import TensorImages, flatten_subsets
from .transforms import SplitTransform, TransformSpec

#: ``auto`` keeps a split on the device only below this many bytes of uint8 pixels (on CUDA, also below a
#: quarter of the free memory): what is left is for the network.
AUTO_MAX_BYTES = 4 << 30

#: images resized per call when the split is resized once up front (bounds the float copy torchvision makes)
RESIZE_CHUNK = 4096


@dataclass
class Draws:
    """One epoch's augmentation draws, one per image of the split (not per position in the order, so an image's
    augmentation does not depend on how many processes share the epoch): crop offsets and flips."""

    top: torch.Tensor
    left: torch.Tensor
    flip: torch.Tensor


def _pixels(base: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(uint8 images N x C x H x W, int64 labels) of an in-memory dataset autosc knows, else None."""
    if isinstance(base, TensorImages):
        return base.images, torch.as_tensor(base.targets).long()
    data, labels = getattr(base, "data", None), getattr(base, "targets", getattr(base, "labels", None))
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 4 and labels is not None:
        images = torch.from_numpy(data)
        if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):  # CIFAR's N x H x W x C
            images = images.permute(0, 3, 1, 2)
        return images, torch.as_tensor(np.asarray(labels)).long()
    return None


def _is_folder(base: Dataset) -> bool:
    """An image folder (torchvision's ``DatasetFolder``): decoded once, image by image, at the input size."""
    return hasattr(base, "samples") and callable(getattr(base, "loader", None))


def _decoded(base: Dataset, indices: list[int], spec: TransformSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The folder's images ``indices`` read and brought to the input size one by one (their sizes differ)."""
    images, labels = [], []
    for i in indices:
        path, label = base.samples[i]
        images.append(_geometry(v2.functional.pil_to_tensor(base.loader(path).convert("RGB"))[None], spec)[0])
        labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def why_not_resident(dataset: Dataset) -> str | None:
    """None if ``dataset`` can be held on the device, else the reason (for ``--device-data on``'s error)."""
    base, _ = flatten_subsets(dataset)
    if _pixels(base) is None and not _is_folder(base):
        return f"{type(base).__name__} is not held in memory as uint8 images (it reads each item on its own)"
    transform = getattr(base, "transform", None)
    if not isinstance(transform, SplitTransform):
        return "its transform is not autosc's own (a dataset given in Python runs its transform per item)"
    if transform.spec.train and not transform.spec.small:
        return "from 64 px its training transform is a random resized crop, which runs per item"
    return None


class DeviceImages:
    """One split on the device: the pixels (already at the input size) and the batch version of its transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, spec: TransformSpec) -> None:
        self.images, self.labels, self.spec = images, labels, spec
        mean, std = (torch.tensor(v, dtype=torch.float32, device=images.device) for v in spec.stats)
        self._scale = (1 / (255 * std)).view(1, -1, 1, 1)
        self._shift = (-mean / std).view(1, -1, 1, 1)

    @classmethod
    def from_dataset(cls, dataset: Dataset, device: torch.device) -> DeviceImages:
        """The split's items (a Subset's, in its order) on ``device``, with the deterministic geometry done."""
        reason = why_not_resident(dataset)
        if reason is not None:
            raise AutoscError(
                f"--device-data on cannot hold this split on the device: {reason}; use --device-data auto"
            )
        base, indices = flatten_subsets(dataset)
        spec = base.transform.spec
        if _is_folder(base):
            images, labels = _decoded(base, indices, spec)
        else:
            images, labels = _pixels(base)
            index = torch.as_tensor(indices, dtype=torch.long)
            images, labels = images[index], labels[index]
            images = torch.cat([_geometry(chunk, spec) for chunk in images.split(RESIZE_CHUNK)])
        return cls(images.to(device).contiguous(), labels.to(device), spec)

    def __len__(self) -> int:
        return len(self.images)

    def draws(self, generator: torch.Generator) -> Draws | None:
        """The random crop offsets and flips of one epoch (None for a split without augmentation)."""
        n, pad = len(self), self.spec.crop_padding
        if not self.spec.train:
            return None
        top = torch.randint(0, 2 * pad[0] + 1, (n,), generator=generator) if pad else torch.zeros(n, dtype=torch.long)
        left = torch.randint(0, 2 * pad[1] + 1, (n,), generator=generator) if pad else torch.zeros(n, dtype=torch.long)
        flip = torch.rand(n, generator=generator) < 0.5 if self.spec.flip else torch.zeros(n, dtype=torch.bool)
        device = self.images.device
        return Draws(top.to(device), left.to(device), flip.to(device))

    def batch(self, index: torch.Tensor, draws: Draws | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(float images normalised, labels) of the items ``index``, augmented by their ``draws``."""
        x = self.images[index]
        if draws is not None:
            pad = self.spec.crop_padding
            if pad:
                x = _crop(x, pad, draws.top[index], draws.left[index])
            flip = draws.flip[index].view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)
        return x.float() * self._scale + self._shift, self.labels[index]

    def batches(self, batch_size: int):
        """The split in order, without augmentation: what evaluation reads."""
        for start in range(0, len(self), batch_size):
            index = torch.arange(start, min(start + batch_size, len(self)), device=self.images.device)
            yield self.batch(index)


def _geometry(images: torch.Tensor, spec: TransformSpec) -> torch.Tensor:
    """The transform's deterministic resize (and centre crop) applied to a stack at once, as the per-item steps do."""
    h, w = spec.size
    if spec.small:
        return v2.functional.resize(images, [h, w]) if spec.native != spec.size else images
    return v2.functional.center_crop(v2.functional.resize(images, [round(max(h, w) / 0.875)]), [h, w])


def _crop(x: torch.Tensor, pad: tuple[int, int], top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Zero-pad by ``pad`` (height, width) and cut each image back to its size at its own offset."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad[1], pad[1], pad[0], pad[0]))
    rows = (top.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (left.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


def fits_on(images_bytes: int, device: torch.device) -> bool:
    """``auto``'s rule: below :data:`AUTO_MAX_BYTES`, and on CUDA below a quarter of the free memory."""
    if images_bytes > AUTO_MAX_BYTES:
        return False
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return images_bytes <= free // 4
    return True


def resident(dataset: Dataset | None, mode: str, device: torch.device) -> DeviceImages | None:
    """The split on the device under ``--device-data mode`` (auto: when it can and fits), else None."""
    if dataset is None or mode == "off" or len(dataset) == 0:
        return None
    if mode == "auto":
        if why_not_resident(dataset) is not None:
            return None
        base, indices = flatten_subsets(dataset)
        spec = base.transform.spec
        channels = 3 if _is_folder(base) else _pixels(base)[0].shape[1]
        if not fits_on(channels * spec.size[0] * spec.size[1] * len(indices), device):
            return None
    return DeviceImages.from_dataset(dataset, device)


__all__ = ["DeviceImages", "Draws", "resident", "why_not_resident"]
