"""The training hyper-parameters of a run, and the per-family defaults they start from.

Four of them (``epochs``, ``batch_size``, ``lr``, ``weight_decay``) default to
``None``, meaning "the recipe for this model and input size"
(:data:`RECIPES`, docs/algorithm.md "Training"); :meth:`TrainConfig.resolve`
fills them in, and a :class:`~autosc.train.Trainer` only accepts a resolved
config. Every other default is stated once, on its field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from ..errors import AutoscError
from ..models import family_of
from ..options import check_choices, option
from .runtime import resolve_device

ALPHA_OPTIMIZERS = ("adam", "sgd")
ALPHA_PASSES = ("shared", "separate")
AMP_MODES = ("off", "bf16", "fp16")
DEVICE_DATA_MODES = ("auto", "on", "off")
#: Training images that re-estimate BatchNorm before each evaluation (benchmarks/RESULTS.md, "A first epoch that
#: means something on every CPU").
PRECISE_BN_IMAGES = 1024
#: Distilled fine-tuning after a latency shrink (autosc/train/fine_tune.py), by default this share of the run's own
#: training steps: bounded by the run (a fixed 200 steps was 2x a short run's whole training), and enough to win back
#: what the shrink cost: a tenth lost 1.8 points on average and up to 4.3 on shrinks made on purpose, half (at 20% of
#: the run's learning rate) 0.3 and at most 0.9, but 1.46 once on fresh networks; a whole run's steps gained 0.65 on
#: average on fresh networks and lost nothing on any (benchmarks/RESULTS.md, "The fine-tune after a shrink" and
#: "(b) with the final latency model").
SHRINK_SHARE = 1.0

#: With ``alpha_step=0`` the alphas get about this many updates per run, however short the run: the
#: reference's "every 20 batches" gives a 6-epoch run only ~24 updates, and the alphas then do not move
#: (docs/algorithm.md, Training).
ALPHA_UPDATES = 600

#: The seed paper's recipe by input size: CIFAR-size inputs (under 64 px) and larger ones.
RECIPES = {
    "small": {"epochs": 200, "batch_size": 128, "lr": 0.1},
    "large": {"epochs": 100, "batch_size": 64, "lr": 0.05},
}
#: A trained start fine-tunes: a tenth of the learning rate and a quarter of the epochs of training from
#: scratch (the peers' practice; docs/algorithm.md, Compressing a trained network).
TRAINED_SCALE = {"epochs": 0.25, "lr": 0.1}
RECIPE_FIELDS = ("epochs", "batch_size", "lr", "weight_decay")


def recipe(model: str, input_size: tuple[int, int], *, trained: bool = False) -> dict:
    """The family defaults of the four recipe fields for ``model`` at ``input_size`` (``trained``: fine-tuning)."""
    base = dict(RECIPES["small" if min(input_size) < 64 else "large"])
    if trained:
        base["epochs"] = max(1, round(base["epochs"] * TRAINED_SCALE["epochs"]))
        base["lr"] = base["lr"] * TRAINED_SCALE["lr"]
    return {**base, "weight_decay": family_of(model).weight_decay}  # the family's (autosc/models/registry.py)


@dataclass
class TrainConfig:
    """Every hyper-parameter of training; ``None`` recipe fields come from :func:`recipe`."""

    epochs: int | None = option(None, "Training epochs (default: 200 under 64 px, else 100).")
    batch_size: int | None = option(None, "Batch size per process (default: 128 under 64 px, else 64).")
    lr: float | None = option(None, "Weight learning rate, SGD Nesterov with a cosine schedule (default 0.1 / 0.05).")
    weight_decay: float | None = option(None, "Weight decay (default: MobileNetV2 4e-5, else 5e-4).")
    momentum: float = option(0.9, "SGD momentum of the weights.")
    warmup: float = option(0.0, "Linear learning-rate warm-up over this fraction of the steps, then cosine.")
    distill: bool | None = option(
        None, "Distil from the trained network you start from (default: on with trained weights)."
    )
    distill_temperature: float = option(4.0, "Distillation temperature T (soft targets softmax(t / T)).")
    distill_weight: float = option(0.5, "lam in (1 - lam) CE + lam T^2 KL(teacher || student).")
    alpha_optimizer: str = option("adam", "The shape's optimiser: adam or sgd.", choices=ALPHA_OPTIMIZERS)
    alpha_lr: float = option(0.05, "Alpha learning rate.")
    alpha_step: int = option(0, "Alpha update every N batches (0: auto, about 600 updates in the shape phase).")
    alpha_pass: str = option(
        "shared",
        "shared: the alphas use the weight step's gradient; separate: an extra pass (the reference).",
        choices=ALPHA_PASSES,
    )
    cost_term: bool = option(True, "The alphas also see what their MACs cost (a budget Lagrangian); off: loss only.")
    shape_until: float = option(0.5, "Fraction of the steps during which the shape learns; then it is fixed.")
    collapse: bool = option(
        True, "When the shape is fixed, each adaptor becomes a plain resize; the weights fine-tune."
    )
    dual_lr: float = option(0.05, "Step of the budget's dual variable per alpha update, per unit of over-budget.")
    penalty: float = option(0.0, "> 0: no dual ascent; the cost weighs penalty x relative over-budget.")
    seed: int = option(0, "Seed for initialisation, data order and augmentation.")
    workers: int = option(0, "Data-loader worker processes.")
    channels_last: bool = option(True, "NHWC activations while training (1.5-1.8x faster on a CPU).")
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N.")
    compile: bool = option(
        False,
        "torch.compile the training forward once the shape is fixed (it then compiles once; measured "
        "in benchmarks/throughput).",
        flag="--compile",
    )
    device_data: str = option(
        "auto",
        "Hold the training and test images on the training device and augment whole batches there (auto: when "
        "the dataset is in memory and fits; off: the per-image data loader).",
        choices=DEVICE_DATA_MODES,
    )
    amp: str = option(
        "off", "Mixed precision: off, bf16 or fp16; the alphas and the budget stay float32.", choices=AMP_MODES
    )
    precise_bn: int = option(
        PRECISE_BN_IMAGES,
        "Before each evaluation, re-estimate BatchNorm statistics on this many training images (0: off; the "
        "running averages lag weights that move fast early in a run, docs/algorithm.md, Training).",
    )
    shrink_steps: int | None = option(
        None,
        "Steps of fine-tuning, distilled from the trained network, for a network the latency check shrinks after "
        "training (default: as many as the run's training steps; 0: BatchNorm re-estimated only).",
    )
    retime: bool = option(
        True,
        "Under a latency budget, time the learning shape against the reference at each epoch end of the shape phase "
        "and where it ends, and project it again when it measures off the model (docs/algorithm.md, Latency budgets).",
    )

    def resolve(self, model: str, input_size: tuple[int, int], *, trained: bool = False) -> TrainConfig:
        """A copy with every ``None`` recipe field set to the family default, and ``distill`` decided.

        ``trained``: the run starts from trained weights (a shorter, gentler recipe; distillation on by default).
        """
        defaults = recipe(model, input_size, trained=trained)
        filled = {k: defaults[k] for k in RECIPE_FIELDS if getattr(self, k) is None}
        if self.distill is None:
            filled["distill"] = trained
        return replace(self, **filled)

    @property
    def resolved(self) -> bool:
        return all(getattr(self, k) is not None for k in RECIPE_FIELDS)

    def validate(self) -> None:
        """Refuse values training cannot use, before any data is read; one line naming the option.

        Unset recipe fields pass: :meth:`resolve` fills them, and the trainer refuses a config it has not filled.
        """
        for name, low in (("epochs", 1), ("batch_size", 1), ("workers", 0)):
            if getattr(self, name) is not None and getattr(self, name) < low:
                raise AutoscError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise AutoscError(f"--lr must be a positive number, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise AutoscError(f"--warmup must be in [0, 1), got {self.warmup}")
        if not (self.distill_temperature > 0 and math.isfinite(self.distill_temperature)):
            raise AutoscError(f"--distill-temperature must be a positive number, got {self.distill_temperature}")
        if not 0 <= self.distill_weight <= 1:
            raise AutoscError(f"--distill-weight must be in [0, 1], got {self.distill_weight}")
        if not 0 < self.shape_until <= 1:
            raise AutoscError(f"--shape-until must be in (0, 1], got {self.shape_until}")
        for name in ("dual_lr", "penalty", "alpha_lr", "weight_decay", "momentum"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and math.isfinite(value)):
                raise AutoscError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.shrink_steps is not None and self.shrink_steps < 0:
            raise AutoscError(f"--shrink-steps must be >= 0 (0 = no fine-tune), got {self.shrink_steps}")
        if self.precise_bn < 0:
            raise AutoscError(f"--precise-bn must be >= 0 images (0 = off), got {self.precise_bn}")
        if self.alpha_step < 0:
            raise AutoscError(f"--alpha-step must be >= 0 (0 = auto), got {self.alpha_step}")
        resolve_device(self.device)  # an absent or misspelt device is refused now, not after the plan is written
        check_choices(self)

    def to_dict(self) -> dict:
        return asdict(self)
