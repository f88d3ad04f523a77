"""The peer methods of ``benchmarks/trained``: what else a user could do with their trained network at a budget.

- channel pruning with Torch-Pruning (:func:`prune_to_macs`): global ranking of the dependency groups' channels,
  channel counts rounded to a multiple of 8, the classifier's outputs kept, the pruning ratio searched until the
  network fits the MACs target;
- a lower input resolution (:class:`LowResolution`, :func:`resolution_for_macs`): the same weights fed a smaller
  image, the resize counted;
- the trained network itself (:func:`train_teacher`): the human ``mobilenet_v2_cifar`` trained from scratch with
  autosc's trainer, cached so that every method of the benchmark starts from the same weights.

MACs are autosc's standard count (``autosc.count``: conv + linear, BN folded; resize MACs apart). Only public
calls of autosc and Torch-Pruning are used.
"""

from __future__ import annotations

import copy
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
from autosc import AutoscError, ModelSpec, count
from autosc.cost import infer_in_channels
from autosc.data import DataBundle
from autosc.io import atomic_write, load_state
from autosc.io import write_json as write_json_atomic
from autosc.train import TrainConfig, Trainer, train

__all__ = [
    "IMPORTANCES",
    "TEACHER",
    "LowResolution",
    "importance_of",
    "prune_at_ratio",
    "prune_to_macs",
    "resolution_for_macs",
    "teacher_key",
    "train_teacher",
]

#: The importance criteria :func:`prune_to_macs` accepts, with what each ranks channels by.
IMPORTANCES = {
    "l1": "L1 norm of each channel's weights over its whole dependency group (Li et al. 2017; data-free)",
    "bn": "|gamma| of the group's batch norms (network slimming, Liu et al. 2017)",
    "taylor": "first-order Taylor |w * dL/dw| on one batch (Molchanov et al. 2019; needs a batch)",
}

#: The human network the benchmark compresses: ``mobilenet_v2_cifar`` at width 1.
TEACHER = "mobilenet_v2_cifar"

#: The pruning ratios tried, in order, until one fits the target; the search then bisects below the first that fits.
#: Torch-Pruning's MACs are not monotone in the ratio at its top end (a group whose every channel falls under the
#: global threshold is left whole), so the search brackets the first crossing instead of bisecting over [0, 1].
RATIO_GRID = tuple(round(0.1 * k, 1) for k in range(1, 10))

#: Smallest input side :func:`resolution_for_macs` returns.
MIN_SIDE = 8


# -- channel pruning ----------------------------------------------------------------------------------


def importance_of(name: str) -> tp.importance.Importance:
    """Torch-Pruning's importance estimator named ``name`` (a key of :data:`IMPORTANCES`)."""
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if name == "bn":
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.TaylorImportance()
    raise AutoscError(f"unknown importance {name!r}; use one of {', '.join(IMPORTANCES)}")


def classifier(net: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` (its classifier), whose outputs are the classes and are never pruned."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise AutoscError("the network has no nn.Linear classifier to keep unpruned")
    return linears[-1]


def macs(net: nn.Module, input_size: tuple[int, int]) -> int:
    """autosc's standard MACs of ``net`` at ``input_size`` (conv + linear, BN folded), resizes included."""
    return count(net, input_size, cells=False).total_macs


def prune_at_ratio(
    net: nn.Module,
    input_size: tuple[int, int],
    in_channels: int,
    ratio: float,
    *,
    importance: str = "l1",
    round_to: int = 8,
    batch: tuple[Tensor, Tensor] | None = None,
) -> nn.Module:
    """A pruned deep copy of ``net`` at Torch-Pruning's global ``pruning_ratio``: one step of the search.

    ``net`` itself is untouched; the copy keeps its training mode and carries no gradients.
    """
    pruned = copy.deepcopy(net)
    was_training = net.training
    param = next(pruned.parameters())
    example = torch.zeros(1, in_channels, *input_size, device=param.device, dtype=param.dtype)
    if importance == "taylor":
        if batch is None:
            raise AutoscError("importance 'taylor' needs a batch (images, labels) to take gradients on")
        pruned.eval()  # gradients without moving the batch-norm statistics of the copy
        pruned.zero_grad(set_to_none=True)
        x, y = batch
        F.cross_entropy(pruned(x.to(param.device)), y.to(param.device)).backward()
    pruner = tp.pruner.MetaPruner(
        pruned,
        example,
        importance=importance_of(importance),
        pruning_ratio=ratio,
        global_pruning=True,
        round_to=round_to,
        ignored_layers=[classifier(pruned)],
    )
    pruner.step()
    pruned.zero_grad(set_to_none=True)
    return pruned.train(was_training)  # tracing left the copy in eval mode


def prune_to_macs(
    net: nn.Module,
    input_size: tuple[int, int],
    in_channels: int,
    target_macs: int,
    *,
    importance: str = "l1",
    round_to: int = 8,
    steps: int = 12,
    batch: tuple[Tensor, Tensor] | None = None,
) -> nn.Module:
    """The largest Torch-Pruning channel pruning of ``net`` (global ranking, ``round_to`` channels, classifier kept)
    whose MACs at ``input_size`` are at most ``target_macs``.

    The default importance, ``"l1"``, is the field's standard baseline: data-free and deterministic, so every run
    of the benchmark prunes the same teacher the same way. ``"bn"`` ranks well mainly after sparsity training (on an
    untrained network all scales tie and nothing is pruned); ``"taylor"`` needs ``batch`` (images, labels; a few
    hundred images give a steadier ranking). The pruning ratio is searched (:data:`RATIO_GRID`, then ``steps``
    bisections) because it does not map to MACs exactly. ``net`` is left as it is; a network already under the
    target comes back as a copy.
    """
    importance_of(importance)  # an unknown name fails before any work
    if macs(net, input_size) <= target_macs:
        return copy.deepcopy(net)

    def at(ratio: float) -> tuple[int, nn.Module]:
        pruned = prune_at_ratio(
            net, input_size, in_channels, ratio, importance=importance, round_to=round_to, batch=batch
        )
        return macs(pruned, input_size), pruned

    low, best = 0.0, None  # low: the largest ratio known to miss the target
    for ratio in RATIO_GRID:
        found, pruned = at(ratio)
        if found <= target_macs:
            high, best = ratio, (found, pruned)
            break
        low = ratio
    if best is None:
        raise AutoscError(
            f"pruning with importance {importance!r} cannot bring the network to {target_macs} MACs "
            f"(at ratio {RATIO_GRID[-1]} it still has {found}); choose a larger target or another importance"
        )
    for _ in range(steps):
        mid = (low + high) / 2
        found, pruned = at(mid)
        if found <= target_macs:
            high = mid
            if found > best[0]:
                best = (found, pruned)
        else:
            low = mid
    return best[1]


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


def teacher_key(bundle: DataBundle, *, epochs: int, seed: int, batch_size: int, lr: float) -> str:
    """The cache name of a teacher: the network, data, input size, image count, recipe and seed."""
    h, w = input_size_of(bundle)
    return (
        f"{TEACHER}-{bundle.name}-{h}x{w}-{len(bundle.train)}img-{data_fingerprint(bundle)}"
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
        "train_seconds": seconds,
        "history": [{k: row[k] for k in ("epoch", "train_loss", "train_acc", "test_acc")} for row in trainer.history],
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "versions": versions(),
        "weights": weights.name,
    }


def train_teacher(
    bundle: DataBundle,
    *,
    epochs: int,
    seed: int,
    cache_dir: Path,
    batch_size: int = 128,
    lr: float = 0.1,
    device: str = "cpu",
) -> tuple[nn.Module, dict]:
    """The human ``mobilenet_v2_cifar`` (width 1) trained from scratch on ``bundle`` with autosc's trainer, and its
    record; cached in ``cache_dir`` under :func:`teacher_key`, so every method compares on the same weights.

    A cached teacher is loaded (``weights_only=True``) instead of trained. The network comes back on the CPU in
    eval mode; the record is the JSON file's, plus ``"from_cache"``.
    """
    cache_dir = Path(cache_dir)
    key = teacher_key(bundle, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr)
    weights, record_path = cache_dir / f"{key}.pt", cache_dir / f"{key}.json"
    spec = ModelSpec(TEACHER, 1.0, bundle.num_classes, bundle.channels)
    if weights.is_file() and record_path.is_file():  # the record is written last: both present, the cache is whole
        net = spec.build()
        load_state(net, torch.load(weights, map_location="cpu", weights_only=True), weights)
        return net.eval(), {**json.loads(record_path.read_text()), "from_cache": True}

    torch.manual_seed(seed)  # the initialisation; the trainer seeds the data order and augmentation
    net = spec.build()
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=4e-5, seed=seed, device=device
    )  # MobileNetV2's weight decay (autosc.train.recipe)
    trainer = Trainer(net, bundle.train, bundle.test, config)
    started = time.perf_counter()
    if not train(trainer, save=lambda _: None):
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
