"""One run configuration, grouped by pipeline stage: the single source of every ``compress`` option.

``RunConfig`` holds a :class:`PlanConfig` (model, budget, width, adaptors), a
:class:`DataConfig`, the :class:`~autosc.train.TrainConfig` and an
:class:`ExportConfig`. The CLI's options (with their help and ``--help``
panels), the keys a preset may set, and ``run.json`` are all derived from these
fields (autosc/options.py); each default is stated once, on its field. Flat
names (``budget``, ``lr``, ``opset``) are unique across the groups, so a preset
or a keyword argument names an option without its group.
"""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, make_dataclass, replace
from types import UnionType
from typing import Any

from .adaptor import MIXES, MODES
from .cost.budget import check_latency_setting, no_budget_message
from .cost.counters import CONVENTIONS
from .cost.terms import TERMS
from .data import DATASETS
from .errors import AutoscError
from .options import check_choices, option
from .prune.importance import DEFAULT_IMPORTANCE, IMPORTANCES, importance_of
from .prune.strategies import DEFAULT_STRATEGY, STRATEGIES, check_share, strategy_of
from .train.config import TrainConfig

LOW_BRANCHES = ("max", "avg")

#: One option per budget kind registered when the package loads (``budget``, ``memory``, ``latency``), declared by
#: the kind itself (autosc/cost/terms/), so that a new kind brings its own option, preset key and run.json field.
BudgetOptions = make_dataclass(
    "BudgetOptions",
    [(t.option, t.option_type, option(None, t.help, cli_type=str)) for t in TERMS.values()],
)


@dataclass
class PlanConfig(BudgetOptions):  # type: ignore[misc,valid-type]
    """What is decided before training: the network, the budget, the width and where the adaptors go."""

    model: str | None = option(None, "Zoo name or path/to/file.py:build.", cli=False)
    latency_threads: int = option(1, "Threads the latency budget is measured at (ONNX Runtime intra-op).")
    latency_batch: int = option(1, "Batch size the latency budget is measured at.")
    latency_table: str | None = option(
        None,
        "table.json measured on your deployment device (autosc probe, then its time_probes.py there): the latency "
        "budget is planned on the device's timings instead of this machine's; the width is the table's.",
    )
    macs_convention: str = option(
        "standard", "How the budget counts MACs: standard, or paper (+ 4 per BN element).", choices=tuple(CONVENTIONS)
    )
    input_size: str | int | None = option(None, "224 or HxW such as 32x48 (default: the family's own).", cli_type=str)
    width: str | float = option("auto", "'auto' (widened network ~1.25x the budget) or a multiplier.", cli_type=str)
    num_classes: int | None = option(None, "Classifier outputs (must match the data's classes).")
    mode: str = option(
        "autosc",
        "Which layers take shape adaptors: autosc (after non-resizing cells), standard (replacing the human "
        "resizes: strided cells and pools run at stride 1) or both.",
        choices=tuple(MODES),
    )
    adaptors: int | None = option(None, "Number of shape adaptors (default 3 under 64 px, else 4).")
    adaptor_at: list[str] | None = option(None, "Place an adaptor after this cell (repeatable).")
    low_branch: str = option(
        "max", "The adaptors' half-resolution branch: max (2x2 max-pool, the reference) or avg.", choices=LOW_BRANCHES
    )
    weights: str | None = option(
        None, "Your trained network's state dict (torch.save(model.state_dict())); its width is read off it."
    )
    widen_noise: float = option(
        0.1, "Widening a trained network: spread of the copies' uneven split (breaks their symmetry)."
    )
    new_head: bool = option(
        False,
        "With --weights of a network trained on other classes: replace its classifier by a fresh one for the "
        "data's classes (transfer learning; autosc transfer sets it).",
        flag="--new-head",
    )
    init_factor: float | None = option(
        None, "Start each standard adaptor at this factor in (0.5, 1) instead of the human shape (AutoTL: 0.55)."
    )
    no_budget: bool = option(
        False, "Train without a budget: the learned shape is kept as it is (autosc transfer's default).",
        flag="--no-budget",
    )  # fmt: skip
    adaptor_mix: str | None = option(
        None,
        "How adaptors combine branches while learning: blend (the paper) or straight-through "
        "(exact identity at the start; default with --weights).",
        choices=MIXES,
    )
    strategy: str = option(
        DEFAULT_STRATEGY,
        "How the budget is met: " + "; ".join(f"{s.name}: {s.description}" for s in STRATEGIES.values()) + ".",
    )
    importance: str = option(
        DEFAULT_IMPORTANCE, "What pruning ranks channels by: " + ", ".join(IMPORTANCES) + " (--strategy prune/compound)."
    )
    prune_share: float = option(
        0.5, "--strategy compound: the share of the budget's cut (0-1) made by pruning channels; the shape makes the rest."
    )
    auto_steps: int = option(
        100, "--strategy auto: fine-tuning steps each candidate split is scored after (the search costs 3x this)."
    )
    input_adaptor: bool = option(
        False, "Also place an adaptor before the first cell: the input resolution learned as part of the shape, "
        "identity at the start (MACs and memory budgets; --mode autosc).",
    )
    shape_search: int = option(
        0, "With a trained start: also score this many random shapes (and each adaptor taking the cut alone) against "
        "the projected identity on validation after BatchNorm re-estimation, and start from the best (0: off).",
    )

    def validate(self, *, budget_given: bool = False) -> None:
        """What can be refused before any data is read: a missing budget, an unknown choice, both placements.
        ``budget_given``: the budget comes as a :class:`~autosc.cost.budget.Budget` instead of option text."""
        texts = self.budget_texts()
        budgeted = budget_given or any(text is not None for text in texts.values())
        if not budgeted and not self.no_budget:
            raise AutoscError(no_budget_message())
        if budgeted and self.no_budget:
            flags = "/".join(t.option_flag() for t in TERMS.values())
            raise AutoscError(f"--no-budget trains without a budget; drop it, or drop {flags}")
        if self.init_factor is not None and not 0.5 < self.init_factor < 1:
            raise AutoscError(f"--init-factor must be in (0.5, 1), got {self.init_factor}")
        if self.init_factor is not None and self.mode in MODES and not MODES[self.mode].standard:
            raise AutoscError(
                f"--init-factor starts the standard adaptors, and --mode {self.mode} has none: "
                "drop it, or use --mode standard or both"
            )
        if self.new_head and self.weights is None:
            raise AutoscError("--new-head replaces the classifier of a trained network: give its --weights")
        for term in TERMS.values():  # grammar errors before any data is read
            if texts.get(term.option) is not None:
                term.check(str(texts[term.option]))
        check_latency_setting(self.latency_threads, self.latency_batch)
        if self.latency_table is not None:  # read now: a missing or foreign table is refused before any data
            from .cost.device_table import read_table

            read_table(self.latency_table)
            if self.latency is None:
                raise AutoscError("--latency-table needs a latency budget (--latency 60% or 1.5ms) to plan with it")
            if strategy_of(self.strategy).searched:
                raise AutoscError(
                    f"--strategy {self.strategy} compares networks pruned three ways, and a --latency-table describes "
                    "one: choose shape, prune or compound, and probe for it"
                )
        check_choices(self)
        strategy_of(self.strategy)  # the registries as they are now: a criterion registered later is accepted
        importance_of(self.importance)
        check_share(self.prune_share)
        if isinstance(self.auto_steps, bool) or not isinstance(self.auto_steps, int) or self.auto_steps < 0:
            raise AutoscError(f"--auto-steps must be a whole number of steps, 0 or more, got {self.auto_steps!r}")
        if self.shape_search < 0:
            raise AutoscError(f"--shape-search must be 0 or more candidate shapes, got {self.shape_search}")
        self.placement()
        if not (self.widen_noise >= 0 and math.isfinite(self.widen_noise)):
            raise AutoscError(f"--widen-noise must be >= 0, got {self.widen_noise}")

    def budget_texts(self) -> dict[str, str | int | None]:
        """The budget as given, by option name (``{"budget": "25M", "memory": None, ...}``)."""
        return {t.option: getattr(self, t.option, None) for t in TERMS.values()}

    def placement(self) -> int | list[str] | None:
        """The adaptor choice :func:`autosc.planning.make_plan` takes: a count, cell names, or the default."""
        if self.adaptors is not None and self.adaptor_at:
            raise AutoscError("give either --adaptors N or --adaptor-at NAME, not both")
        return list(self.adaptor_at) if self.adaptor_at else self.adaptors


@dataclass
class DataConfig:
    """Which images train and test the network."""

    data: str | None = option(None, f"Required: {', '.join(DATASETS)} (synthetic: tests and dry runs).")
    data_root: str | None = option(None, "Folder holding the dataset files.")
    download: bool = option(False, "Let torchvision download the dataset (needs internet).", flag="--download")
    subset: int | None = option(None, "Train on a seeded random subset of N images.")
    test_subset: int | None = option(None, "Evaluate on a seeded random subset of N test images.")
    val_split: float = option(
        0.1, "Fraction of the training images held out (seeded) to validate on; the test split is only reported."
    )
    data_seed: int | None = option(
        None, "Seed of --subset, --test-subset and --val-split (default: --seed): runs of other seeds on one split."
    )

    def validate(self) -> None:
        if not 0 <= self.val_split < 1:
            raise AutoscError(f"--val-split must be in [0, 1), got {self.val_split}")

    def seed(self, run_seed: int) -> int:
        """The seed the subsets and the validation split are drawn with."""
        return self.data_seed if self.data_seed is not None else run_seed


def require_data(config: DataConfig) -> str:
    """The dataset a compress run trains on: it must be named (a silent synthetic run would train on noise)."""
    if config.data is None:
        raise AutoscError(
            f"compress needs --data: one of {', '.join(DATASETS)} "
            "(e.g. --data fashion-mnist; --data synthetic for a dry run)"
        )
    return config.data


@dataclass
class ExportConfig:
    """How the frozen network is exported and timed."""

    exporter: str = option(
        "dynamo", "ONNX exporter: dynamo or torchscript (faster).", choices=("dynamo", "torchscript")
    )
    opset: int = option(18, "ONNX opset (>= 17).")
    latency_runs: int = option(200, "Timed ONNX Runtime runs per model.")
    pool_halves: bool = option(
        True, "Export a resize to exactly half the size as a 2x2 average pool (same values, faster in ONNX Runtime)."
    )
    quantize: str = option(
        "none", "Also write an INT8 ONNX file (int8: ONNX Runtime static QDQ, per-channel weights), measured against "
        "the float one.", choices=("none", "int8"),
    )  # fmt: skip
    calibration_images: int = option(256, "Training images (seeded by --seed) the INT8 ranges are calibrated on.")

    @property
    def int8(self) -> bool:
        """The network that ships is the INT8 file: a latency budget times INT8 twins (docs/algorithm.md, INT8
        export)."""
        return self.quantize == "int8"

    def validate(self) -> None:
        """Refuse an exporter, opset or run count the export would refuse, before hours of training."""
        import onnx

        from .export import MIN_OPSET

        check_choices(self)
        top = onnx.defs.onnx_opset_version()
        if not MIN_OPSET <= self.opset <= top:
            raise AutoscError(f"--opset must be an integer from {MIN_OPSET} to {top}, got {self.opset}")
        if self.latency_runs < 1:
            raise AutoscError(f"--latency-runs must be at least 1, got {self.latency_runs}")
        if self.calibration_images < 1:
            raise AutoscError(f"--calibration-images must be 1 or more, got {self.calibration_images}")


@dataclass
class RunConfig:
    """Everything that defines a compress run (and nothing about where or how loudly it runs)."""

    plan: PlanConfig = field(default_factory=PlanConfig)
    dataset: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    baseline: bool = option(
        False, "Also train the human network at the widest width that fits the budget.", flag="--baseline"
    )

    # -- the flat view: presets, keyword arguments, the CLI --------------------------------------------
    @classmethod
    def groups(cls) -> dict[str, type]:
        """Group attribute -> dataclass, in pipeline order."""
        return {"plan": PlanConfig, "dataset": DataConfig, "train": TrainConfig, "export": ExportConfig}

    @classmethod
    def option_fields(cls) -> list[tuple[str | None, Field]]:
        """Every option as (group attribute or None for the run itself, field), in pipeline order."""
        out: list[tuple[str | None, Field]] = [(g, f) for g, kind in cls.groups().items() for f in fields(kind)]
        return out + [(None, f) for f in fields(cls) if f.name not in cls.groups()]

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The flat option names a preset or ``compress(**options)`` may set."""
        return tuple(f.name for _, f in cls.option_fields())

    @classmethod
    def from_flat(cls, values: dict[str, Any], *, where: str = "options") -> RunConfig:
        """A config from flat ``name: value`` pairs; unknown names and wrongly typed values are refused."""
        return cls().updated(values, where=where)

    def updated(self, values: dict[str, Any], *, where: str = "options") -> RunConfig:
        """A copy with the flat ``values`` set (``None`` values are skipped: "not given")."""
        unknown = sorted(set(values) - set(self.option_names()))
        if unknown:
            raise AutoscError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(self.option_names())}"
            )
        changes: dict[str | None, dict[str, Any]] = {}
        hints = field_types()
        for group, f in self.option_fields():
            if values.get(f.name) is not None:
                changes.setdefault(group, {})[f.name] = _checked(f.name, hints[f.name], values[f.name], where)
        groups = {g: replace(getattr(self, g), **c) for g, c in changes.items() if g is not None}
        return replace(self, **groups, **changes.get(None, {}))

    def to_flat(self) -> dict[str, Any]:
        """Every option by flat name, defaults included."""
        return {f.name: getattr(getattr(self, g) if g else self, f.name) for g, f in self.option_fields()}

    def to_dict(self) -> dict[str, Any]:
        """Grouped plain data (``run.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "run.json") -> RunConfig:
        flat = {k: v for g in cls.groups() for k, v in data.get(g, {}).items()}
        flat.update({k: v for k, v in data.items() if k not in cls.groups()})
        return cls.from_flat(flat, where=where)


def field_types() -> dict[str, Any]:
    """Every option's declared type by flat name (the annotations, resolved), for checking and for the CLI."""
    hints: dict[str, Any] = {}
    for kind in (*RunConfig.groups().values(), RunConfig):
        hints.update(typing.get_type_hints(kind))
    return hints


def _checked(name: str, hint: Any, value: Any, where: str) -> Any:
    """``value`` if it has the field's type (an int where a float is wanted is widened); else one clear line."""
    kinds = typing.get_args(hint) if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    for kind in kinds:
        if kind is type(None):
            continue
        if typing.get_origin(kind) is list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return list(value)
            continue
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value if str in kinds else _bounded(name, value, where)  # text-or-int: its grammar bounds it
        if kind in (str, bool) and isinstance(value, kind):
            return value
    wanted = " or ".join(_type_name(k) for k in kinds if k is not type(None))
    raise AutoscError(f"{where}: {name} must be {wanted}, got {value!r}")


#: The largest value of an integer option (:data:`INT_MAX` for one not named): far above any real run, so that a
#: mistyped or pasted number (``--epochs 99999999999999999999999``) is refused in one line, not trained on for
#: ever or overflowed into a seed (a seed enters a 64-bit generator seed times 100003, autosc/train/runtime.py).
INT_LIMITS = {
    "epochs": 100_000,
    "batch_size": 65_536,
    "seed": 2**32 - 1,
    "workers": 256,
    "num_classes": 1_000_000,
    "latency_threads": 1024,
    "latency_batch": 65_536,
    "latency_runs": 1_000_000,
    "shrink_steps": 1_000_000,
}
INT_MAX = 1_000_000_000


def _bounded(name: str, value: int, where: str) -> int:
    """``value`` if within its option's limit (either sign: a lower bound the option has is its validator's)."""
    limit = INT_LIMITS.get(name, INT_MAX)
    if -limit <= value <= limit:
        return value
    bound = f"at most {limit}" if value > 0 else f"at least {-limit}"
    prefix = "" if where == "options" else f"{where}: "
    raise AutoscError(f"{prefix}--{name.replace('_', '-')} must be {bound}, got {value}")


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is list:
        return "a list of names"
    return {int: "an integer", float: "a number", str: "text", bool: "true or false"}.get(kind, str(kind))


def default_of(f: Field) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


__all__ = ["DataConfig", "ExportConfig", "PlanConfig", "RunConfig", "TrainConfig"]
