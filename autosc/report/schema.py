"""The report of a compress run as typed records: written once by the run, read by every renderer.

``Report.to_dict()`` is ``report.json``; ``Report.from_dict()`` reads it back, so
``report.md``, the pictures and the CLI all read the same fields instead of
re-deriving them from a dict. The keys listed in docs/algorithm.md ("The run folder")
are a contract other tools rely on: add fields, never rename them.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from ..errors import AutoscError
from ..formats import REPORT_FORMAT, migrate_report


def _plain(obj: Any) -> Any:
    """Nested dataclasses to dicts (None-valued optional records kept as null)."""
    return asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj


@dataclass
class Macs:
    """MACs in ``convention`` (docs/algorithm.md, "Cost conventions"); ``final_resize`` is the adaptors' bilinear part."""

    convention: str
    counter: str
    human: int
    widened: int
    final: int
    final_resize: int

    @property
    def final_total(self) -> int:
        """What a MACs budget caps: conv + linear plus the adaptors' resize MACs."""
        return self.final + self.final_resize

    def to_dict(self) -> dict:
        return {**asdict(self), "final_total": self.final_total}


@dataclass
class Adaptor:
    """One shape adaptor: where it is, the human and learned size, its factor and how alpha moved."""

    name: str
    human_size: list[int]
    size: list[int]
    sigma: float
    s: float
    alpha_start: float | None = None
    alpha_end: float | None = None
    branch: str | None = None  # "full" / "low" where training collapsed it to one branch; None: the two-branch mix
    s_start: float | None = None  # the factor before training (from alpha_start)
    # "standard": it replaces a human resize (its cell ran at stride 1), else "autosc"; stride1_size: the map it
    # resizes, its human_size unless standard adaptors before it (or its own cell) run at stride 1
    # (docs/algorithm.md, Modes: standard and both)
    kind: str | None = None
    stride1_size: list[int] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Accuracy:
    """Top-1 on the test split (``final``, ``best`` over epochs), on validation (``val``: what decisions use), and
    the trained start network's own test accuracy before compressing (``human``; None from scratch)."""

    final: float | None
    best: float | None = None
    human: float | None = None
    val: float | None = None
    human_val: float | None = None


@dataclass
class Onnx:
    path: str
    opset: int
    exporter: str
    max_abs_diff: float
    pooled_resizes: int = 0  # exact-half resizes exported as average pools


@dataclass
class Timing:
    """Latency percentiles of one network, milliseconds."""

    p50: float
    p90: float
    p99: float


@dataclass
class Latency:
    """ONNX Runtime CPU latency of the compressed, human (and baseline) network, timed interleaved."""

    compressed: Timing
    human: Timing
    threads: int
    batch: int
    runs: int
    baseline: Timing | None = None
    # Under a latency budget only (docs/algorithm.md, Latency budgets): the latency model's prediction for the
    # compressed network, the rounds timed and half the range of their compressed p50 (the run-to-run noise),
    # whether the measured p50 (the middle round's) is within the budget, and how often it was shrunk to get there.
    predicted: float | None = None
    rounds: int | None = None
    spread: float | None = None
    budget_met: bool | None = None
    shrinks: int | None = None
    # the verdict's terms: the compressed p50 over the reference's ("human") in the same round, half the range of
    # that share over the rounds, and the budget as a share of the reference (autosc/run/measure.py, Verdict)
    share: float | None = None
    share_spread: float | None = None
    allowed_share: float | None = None
    # after a shrink: the fine-tune's steps and the test accuracy as trained, shrunk and fine-tuned
    shrink: dict | None = None
    # planned on a deployment device's timing table: its file and device (the verdict is then its prediction)
    table: dict | None = None
    # how far over the allowed share (a fraction of it), beyond the noise, the end check let a network be unshrunk
    tolerance: float | None = None
    # the re-times during the shape phase (autosc/run/retime.py): step, shares measured and predicted, re-projected
    retimes: list | None = None
    # true: the files were timed as INT8 (--quantize int8 under a latency budget: the budget is on what ships)
    int8: bool | None = None

    def to_dict(self) -> dict:
        return {**{k: _plain(getattr(self, k)) for k in TIMINGS}, **{k: getattr(self, k) for k in LATENCY_FIELDS}}


@dataclass
class Quantized:
    """The INT8 files of ``--quantize int8`` measured beside their float ones (docs/algorithm.md, INT8 export): ONNX
    Runtime top-1 of each file on the test and validation splits, the compressed network's largest logit difference,
    the four files timed together, and the nodes each INT8 file still computes in float."""

    kind: str
    calibration_images: int
    seed: int
    files: dict[str, str]  # label (compressed, human) -> the INT8 file's name in the run folder
    accuracy: dict[str, dict]  # label -> {"float", "int8", "float_val", "int8_val"}: ONNX Runtime top-1
    logit_diff: float  # the compressed network's largest |INT8 - float| logit on ``logit_images`` test images
    logit_diff_rel: float  # the same over its largest float logit
    logit_images: int
    latency: dict[str, Timing]  # compressed, compressed_int8, human, human_int8: timed together
    threads: int
    batch: int
    runs: int
    float_ops: dict[str, dict[str, int]]  # label -> op type -> nodes left computing in float
    loss_limit: float  # top-1 the INT8 compressed network may lose before the report says so
    # the compressed network's float and INT8 files by op type as ONNX Runtime ran them (autosc.latency.op_profile)
    profile: dict[str, dict] | None = None

    @property
    def lost(self) -> float:
        """Test top-1 the compressed network loses in INT8 (positive: worse than float)."""
        acc = self.accuracy["compressed"]
        return acc["float"] - acc["int8"]

    def to_dict(self) -> dict:
        return {**asdict(self), "lost": self.lost, "within_limit": self.lost <= self.loss_limit}

    @classmethod
    def from_dict(cls, data: dict) -> Quantized:
        names = [f.name for f in fields(cls)]
        return cls(**{**{k: data.get(k) for k in names}, "latency": {k: Timing(**t) for k, t in data["latency"].items()}})


@dataclass
class Baseline:
    """The human network narrowed to the budget (``--baseline``), trained with the same recipe and seed."""

    width: float
    accuracy: float
    epochs: int
    macs: int
    params: int


@dataclass
class Report:
    """Everything ``report.json`` holds; see docs/algorithm.md ("The run folder")."""

    model: str
    data: str
    input_size: list[int]
    command: str
    budget: dict  # Budget.to_dict(): every kind (null where uncapped) and every setting
    width: float
    macs: Macs
    params: dict  # human, final
    activation_bytes: dict  # human, final
    adaptors: list[Adaptor]
    accuracy: Accuracy
    onnx: Onnx
    latency_ms: Latency
    layers: dict  # human / learned: [{name, size}] per cell, in execution order (the shape picture's data)
    epochs: int
    train: dict  # the training config as run
    alpha_step: int
    env: dict
    baseline: Baseline | None = None
    seconds: float | None = None
    start: dict | None = None  # the trained start: weights (file), trained_width, widened, distilled; None: scratch
    #: how the budget was split (name, importance, prune_share, and the pruning step's record; None: an older report)
    strategy: dict | None = None
    quantized: Quantized | None = None  # --quantize int8: the INT8 files measured; None without

    def to_dict(self) -> dict:
        """``report.json``: the format tag, then every field, null where it does not apply (docs/algorithm.md,
        File formats)."""
        out: dict = {"format": REPORT_FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = [v.to_dict() if hasattr(v, "to_dict") else _plain(v) for v in value]
            elif hasattr(value, "to_dict"):
                value = value.to_dict()
            else:
                value = _plain(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        """Read ``report.json`` back, an older version through :func:`autosc.formats.migrate_report`; a newer
        version is refused.

        A file that is not an autosc report raises :class:`AutoscError` naming what is missing,
        rather than a bare ``KeyError`` from deep inside.
        """
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in data]
        if missing:
            raise AutoscError(f"report lacks required key(s) {', '.join(missing)}; is it an autosc report.json?")
        try:
            return cls._from_dict(migrate_report(data))
        except (KeyError, TypeError, AttributeError) as err:
            raise AutoscError(
                f"report.json does not match the autosc report schema ({err}); is it from autosc?"
            ) from err

    @classmethod
    def _from_dict(cls, data: dict) -> Report:
        macs = {f.name: data["macs"][f.name] for f in fields(Macs)}  # final_total is derived
        latency = data["latency_ms"]
        timings = {k: Timing(**latency[k]) if latency[k] is not None else None for k in TIMINGS}
        adaptor_keys = [f.name for f in fields(Adaptor)]
        return cls(
            model=data["model"],
            data=data["data"],
            input_size=list(data["input_size"]),
            command=data["command"],
            budget=dict(data["budget"]),
            width=float(data["width"]),
            macs=Macs(**macs),
            params=dict(data["params"]),
            activation_bytes=dict(data["activation_bytes"]),
            adaptors=[Adaptor(**{k: a[k] for k in adaptor_keys}) for a in data["adaptors"]],
            accuracy=Accuracy(**data["accuracy"]),
            onnx=Onnx(**data["onnx"]),
            latency_ms=Latency(**timings, **{k: latency[k] for k in LATENCY_FIELDS}),
            layers=dict(data["layers"]),
            epochs=int(data["epochs"]),
            train=dict(data["train"]),
            alpha_step=int(data["alpha_step"]),
            env=dict(data["env"]),
            baseline=Baseline(**data["baseline"]) if data["baseline"] is not None else None,
            seconds=data["seconds"],
            start=data["start"],
            strategy=data["strategy"],
            quantized=Quantized.from_dict(data["quantized"]) if data["quantized"] is not None else None,
        )


#: The timings of ``latency_ms`` in report.json (``baseline``: null without ``--baseline``).
TIMINGS = ("compressed", "human", "baseline")
#: The plain (non-timing) fields of ``latency_ms`` in report.json.
LATENCY_FIELDS = ("threads", "batch", "runs", "predicted", "rounds", "spread", "budget_met", "shrinks", "share",
                  "share_spread", "allowed_share", "shrink", "table", "tolerance", "retimes", "int8")  # fmt: skip

__all__ = ["Accuracy", "Adaptor", "Baseline", "Latency", "Macs", "Onnx", "Quantized", "Report", "Timing"]
