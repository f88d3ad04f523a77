"""The peer methods of ``benchmarks/trained``: what else a user could do with their trained network at a budget.

- channel pruning with Torch-Pruning (:func:`autosc.prune.prune_to_macs`, autosc's own pruning stage): global
  ranking of the dependency groups' channels, channel counts rounded to a multiple of 8, the classifier's outputs
  kept, the pruning ratio searched until the network fits the MACs target;
- a lower input resolution (:class:`LowResolution`, :func:`resolution_for_macs`): the same weights fed a smaller
  image, the resize counted;
- the trained network itself (:func:`train_teacher`): the human ``mobilenet_v2_cifar`` trained from scratch with
  autosc's trainer, cached so that every method of the benchmark starts from the same weights.

MACs are autosc's standard count (``autosc.count``: conv + linear, BN folded; resize MACs apart). Only public
calls of autosc and Torch-Pruning are used.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_pruning as tp
import torchvision
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

import autosc
from autosc import AutoscError, ModelSpec
from autosc.cost import infer_in_channels
from autosc.data import DataBundle
from autosc.io import atomic_write, load_state
from autosc.io import write_json as write_json_atomic
from autosc.prune import IMPORTANCES, classifier, importance_of, prune_at_ratio, prune_to_macs
from autosc.prune.pruner import macs
from autosc.train import TrainConfig, Trainer, train

__all__ = [
    "IMPORTANCES",
    "TEACHER",
    "LowResolution",
    "classifier",
    "importance_of",
    "macs",
    "prune_at_ratio",
    "prune_to_macs",
    "resolution_for_macs",
    "teacher_key",
    "train_teacher",
]

#: The human network the benchmark compresses: ``mobilenet_v2_cifar`` at width 1.
TEACHER = "mobilenet_v2_cifar"

#: Smallest input side :func:`resolution_for_macs` returns.
MIN_SIDE = 8


# -- lower input resolution ---------------------------------------------------------------------------


class LowResolution(nn.Module):
    """``net`` fed its input bilinearly resized to ``size`` (antialias off): the same weights at a lower resolution,
    the peer that spends the budget on fewer pixels instead of fewer channels."""

    def __init__(self, net: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.net, self.size = net, (int(size[0]), int(size[1]))

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)
        return self.net(x)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def resolution_for_macs(
    net: nn.Module, input_size: tuple[int, int], in_channels: int, target_macs: int
) -> tuple[int, int]:
    """The largest square size (``MIN_SIDE`` px up to the smaller input side) at which ``LowResolution(net, size)``,
    fed ``input_size`` images, costs at most ``target_macs`` MACs, its resize included.

    The MACs grow with the side, so a bisection over the side finds it in a few counts.
    """
    if infer_in_channels(net) != in_channels:
        raise AutoscError(f"the network takes {infer_in_channels(net)} input channels, not {in_channels}")

    def fits(side: int) -> bool:
        return macs(LowResolution(net, (side, side)), input_size) <= target_macs

    low, high = MIN_SIDE, min(input_size)
    if not fits(low):
        raise AutoscError(f"no input of {MIN_SIDE} px or more brings the network under {target_macs} MACs")
    while low < high:  # invariant: fits(low)
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low, low


# -- the teacher: the user's trained network ----------------------------------------------------------


def _labels(dataset: Dataset) -> Tensor | None:
    """The labels of ``dataset`` in order, read without transforming an image, where the dataset holds them."""
    if isinstance(dataset, Subset):
        inner = _labels(dataset.dataset)
        return None if inner is None else inner[torch.as_tensor(dataset.indices, dtype=torch.long)]
    targets = getattr(dataset, "targets", None)
    return None if targets is None else torch.as_tensor(targets)


def data_fingerprint(bundle: DataBundle) -> str:
    """Eight hex digits of the splits' sizes and training labels: two bundles with other images get other caches."""
    digest = hashlib.sha1(f"{bundle.name} {len(bundle.train)} {len(bundle.test)}".encode())
    labels = _labels(bundle.train)
    if labels is not None:
        digest.update(labels.to(torch.int64).numpy().tobytes())
    return digest.hexdigest()[:8]


def input_size_of(bundle: DataBundle) -> tuple[int, int]:
    """The (height, width) the bundle's test images come at (the test transform is deterministic)."""
    image = bundle.test[0][0]
    return int(image.shape[-2]), int(image.shape[-1])


def teacher_key(
    bundle: DataBundle, *, epochs: int, seed: int, batch_size: int, lr: float, model: str = TEACHER,
    width: float = 1.0,
) -> str:  # fmt: skip
    """The cache name of a teacher: the network (and its width, where not 1), data, input size, image count, recipe
    and seed."""
    h, w = input_size_of(bundle)
    name = model if width == 1.0 else f"{model}-w{width:g}"
    return (
        f"{name}-{bundle.name}-{h}x{w}-{len(bundle.train)}img-{data_fingerprint(bundle)}"
        f"-e{epochs}-bs{batch_size}-lr{lr:g}-s{seed}"
    )


def versions() -> dict:
    """The library versions a teacher's weights depend on."""
    return {
        "autosc": autosc.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_pruning": tp.__version__,
        "python": platform.python_version(),
    }


def teacher_record(key: str, spec: ModelSpec, bundle: DataBundle, trainer: Trainer, seconds: float, weights: Path) -> dict:
    """What a cached teacher was made from and how (data, recipe, accuracy, command, versions): read back by every
    benchmark that starts from it, so a reader can tell whether two runs compressed the same network."""
    config = trainer.config
    return {
        "key": key,
        "model": spec.to_dict(),
        "data": bundle.name,
        "input_size": list(input_size_of(bundle)),
        "images": len(bundle.train),
        "test_images": len(bundle.test),
        "data_fingerprint": data_fingerprint(bundle),
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "seed": config.seed,
        "device": str(trainer.device),
        "test_acc": trainer.history[-1]["test_acc"],
        "val_acc": trainer.history[-1].get("val_acc"),
        "val_images": len(bundle.val) if bundle.val is not None else 0,
        "plateau": plateau(trainer.history),
        "train_seconds": seconds,
        "history": [{k: row.get(k) for k in ("epoch", "train_loss", "train_acc", "test_acc", "val_acc")}
                    for row in trainer.history],  # fmt: skip
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "versions": versions(),
        "weights": weights.name,
    }


#: The convergence rule of a teacher (issue 30's own example): the last ``PLATEAU_EPOCHS`` epochs' validation
#: accuracy lie within ``PLATEAU_POINTS`` points of each other. How far the end lies under the run's best epoch is
#: recorded too, but does not decide: the best of 60 noisy epochs on 800 images sits above any plateau
#: (benchmarks/RESULTS.md, "Channels and shape at equal measured latency"); doubling the epochs is the other check.
PLATEAU_EPOCHS, PLATEAU_POINTS = 3, 0.3


def plateau(history: list[dict]) -> dict:
    """Whether a training run's validation accuracy had plateaued by its end (:data:`PLATEAU_EPOCHS`,
    :data:`PLATEAU_POINTS`), with the figures the verdict is read from; ``met`` is None without a validation split."""
    vals = [100 * row["val_acc"] for row in history if row.get("val_acc") is not None]
    if len(vals) < PLATEAU_EPOCHS:
        return {"met": None, "rule": _RULE}
    last = vals[-PLATEAU_EPOCHS:]
    spread, below_best = max(last) - min(last), max(vals) - min(last)
    return {"met": spread <= PLATEAU_POINTS + 1e-9, "rule": _RULE, "last_val": [round(v, 2) for v in last],
            "best_val": round(max(vals), 2), "spread": round(spread, 2), "below_best": round(below_best, 2)}  # fmt: skip


_RULE = f"last {PLATEAU_EPOCHS} epochs' validation accuracy within {PLATEAU_POINTS} points"


def train_teacher(
    bundle: DataBundle,
    *,
    epochs: int,
    seed: int,
    cache_dir: Path,
    batch_size: int = 128,
    lr: float = 0.1,
    device: str = "cpu",
    model: str = TEACHER,
    width: float = 1.0,
) -> tuple[nn.Module, dict]:
    """The human ``model`` (default ``mobilenet_v2_cifar``, at ``width``) trained from scratch on ``bundle`` with
    autosc's trainer, and its record (with the validation history and the :func:`plateau` verdict); cached in
    ``cache_dir`` under :func:`teacher_key`, so every method compares on the same weights.

    A cached teacher is loaded (``weights_only=True``) instead of trained. The network comes back on the CPU in
    eval mode; the record is the JSON file's, plus ``"from_cache"``.
    """
    cache_dir = Path(cache_dir)
    key = teacher_key(bundle, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr, model=model, width=width)
    weights, record_path = cache_dir / f"{key}.pt", cache_dir / f"{key}.json"
    spec = ModelSpec(model, width, bundle.num_classes, bundle.channels)
    if weights.is_file() and record_path.is_file():  # the record is written last: both present, the cache is whole
        net = spec.build()
        load_state(net, torch.load(weights, map_location="cpu", weights_only=True), weights)
        record = json.loads(record_path.read_text())
        if "history" in record and "plateau" in record:  # the verdict by today's rule, read off the same history
            record["plateau"] = plateau(record["history"])
        return net.eval(), {**record, "from_cache": True}

    torch.manual_seed(seed)  # the initialisation; the trainer seeds the data order and augmentation
    net = spec.build()
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=4e-5, seed=seed, device=device
    )  # MobileNetV2's weight decay (autosc.train.recipe)
    trainer = Trainer(net, bundle.train, bundle.test, config, val_set=bundle.val)
    started = time.perf_counter()
    def report(trainer: Trainer, row: dict) -> None:  # a line per epoch: a long training shows where it is
        val = f"{row['val_acc']:.2%}" if row.get("val_acc") is not None else "—"
        print(f"teacher epoch {row['epoch']}/{epochs}: validation {val}, test {row['test_acc']:.2%}, "
              f"{row.get('seconds', 0):.0f} s", flush=True)

    if not train(trainer, save=lambda _: None, on_epoch=report):
        raise SystemExit("stopped: the teacher was not cached; the same command trains it again")
    seconds = time.perf_counter() - started
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(weights, lambda tmp: torch.save(state, tmp))
    record = teacher_record(key, spec, bundle, trainer, seconds, weights)
    write_json_atomic(record_path, record)
    teacher = spec.build()
    load_state(teacher, state, weights)
    return teacher.eval(), {**record, "from_cache": False}
