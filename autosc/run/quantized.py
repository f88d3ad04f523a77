"""The INT8 stage of a run (``--quantize int8``; issue 31): the compressed and the human network's float files
quantized by ONNX Runtime, and each INT8 file measured beside its float one, since what ships is what must be
measured (docs/algorithm.md, INT8 export)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from ..config import ExportConfig
from ..cost.latency_probe import BLOCK
from ..data import DataBundle
from ..data.bundle import flatten_subsets, without_augmentation
from ..export.quantize import calibration_indices, logit_difference, onnx_accuracy, quantize_int8
from ..latency import op_profile, time_together
from ..report import schema
from .folder import RunFolder
from .progress import Display

#: Test images the largest INT8-vs-float logit difference is taken over.
LOGIT_IMAGES = 256
#: Test top-1 the INT8 compressed network may lose against its float file before the report says so plainly: a
#: point is what per-channel INT8 usually costs a CNN, so more is a network the calibration does not suit.
INT8_LOSS_LIMIT = 0.01
#: The networks quantized: the one autosc made and the one it is compared with.
QUANTIZED = ("compressed", "human")
#: Runs ONNX Runtime's profiler averages the time by op over (at most ``--latency-runs``).
PROFILE_RUNS = 50
#: Images per ONNX Runtime call when the splits are scored.
EVAL_BATCH = 256


def calibration_images(bundle: DataBundle, count: int, seed: int) -> torch.Tensor:
    """``count`` training images drawn by ``seed`` (:func:`calibration_indices`), read without augmentation: as
    the network sees an image when deployed."""
    base, indices = flatten_subsets(bundle.train)
    plain = without_augmentation(base, bundle.test)
    return torch.stack([plain[indices[i]][0] for i in calibration_indices(len(indices), count, seed)]).float()


def quantize_run(
    folder: RunFolder, bundle: DataBundle, config: ExportConfig, *, seed: int, threads: int, batch: int,
    display: Display | None = None,
) -> schema.Quantized:  # fmt: skip
    """Quantize ``model.onnx`` and ``human.onnx`` to ``model.int8.onnx`` and ``human.int8.onnx`` on the same
    calibration images, then measure all four: top-1 on test and validation, the compressed network's largest
    logit difference, and their latency timed together at the budget's ``threads`` and ``batch``."""
    if display is not None:
        display.log(f"quantizing to INT8 on {config.calibration_images} training images and measuring it ...")
    images = calibration_images(bundle, config.calibration_images, seed)
    done = {label: quantize_int8(folder.onnx(label), folder.int8(label), images) for label in QUANTIZED}
    paths = {**{label: folder.onnx(label) for label in QUANTIZED}, **{f"{k}_int8": r.path for k, r in done.items()}}
    test, val = split_accuracy(paths, bundle)  # all four files in one pass over each split
    timed = time_together(paths, threads=threads, batch=batch, runs=config.latency_runs,
                          warmup=min(20, config.latency_runs), block=min(BLOCK, config.latency_runs))  # fmt: skip
    accuracy = {label: _pair(test, val, label, f"{label}_int8") for label in QUANTIZED}
    worst, relative, sample = _logits(paths["compressed"], paths["compressed_int8"], bundle)
    return schema.Quantized(
        kind=config.quantize, calibration_images=len(images), seed=seed,
        files={label: Path(r.path).name for label, r in done.items()}, accuracy=accuracy,
        logit_diff=worst, logit_diff_rel=relative, logit_images=sample,
        latency={label: schema.Timing(**{k: t[k] for k in ("p50", "p90", "p99")}) for label, t in timed.items()},
        threads=threads, batch=batch, runs=config.latency_runs,
        float_ops={label: r.float_ops for label, r in done.items()}, loss_limit=INT8_LOSS_LIMIT,
        profile={label: op_profile(paths[label], threads=threads, batch=batch, runs=min(PROFILE_RUNS, config.latency_runs))
                 for label in ("compressed", "compressed_int8")},
    )  # fmt: skip


@dataclass(frozen=True)
class Int8File:
    """``autosc export --quantize int8``'s INT8 file and what it measured: ONNX Runtime top-1 of the float and the
    INT8 file on the test and validation splits of the data it was calibrated on, and the largest logit difference."""

    path: Path
    data: str
    calibration_images: int
    seed: int
    accuracy: dict[str, float | None]  # float, int8, float_val, int8_val
    logit_diff: float
    logit_diff_rel: float
    float_ops: dict[str, int]

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def quantize_file(float_onnx: Path, out: Path, bundle: DataBundle, *, count: int, seed: int) -> Int8File:
    """``out``, the INT8 version of ``float_onnx`` calibrated on ``count`` of ``bundle``'s training images, measured
    beside it on the bundle's test and validation splits."""
    done = quantize_int8(float_onnx, out, calibration_images(bundle, count, seed))
    accuracy, (worst, relative, _) = measure_pair(float_onnx, done.path, bundle)
    return Int8File(done.path, bundle.name, done.calibration_images, seed, accuracy, worst, relative, done.float_ops)


def measure_pair(float_onnx: Path, int8_onnx: Path, bundle: DataBundle) -> tuple[dict, tuple[float, float, int]]:
    """Top-1 of a float file and its INT8 one on the test and validation splits ({float, int8, float_val,
    int8_val}; None without a validation split), and (the largest logit difference, the same over the largest float
    logit, the images it was taken on)."""
    test, val = split_accuracy({"float": float_onnx, "int8": int8_onnx}, bundle)
    return _pair(test, val, "float", "int8"), _logits(float_onnx, int8_onnx, bundle)


def split_accuracy(paths: dict[str, Path], bundle: DataBundle) -> tuple[dict, dict]:
    """({name: test top-1}, {name: validation top-1, None without a split}) of every file, one pass per split."""
    test = onnx_accuracy(paths, _batches(bundle.test))
    val = onnx_accuracy(paths, _batches(bundle.val)) if bundle.val is not None else dict.fromkeys(paths)
    return test, val


def _pair(test: dict, val: dict, float_key: str, int8_key: str) -> dict[str, float | None]:
    return {"float": test[float_key], "int8": test[int8_key], "float_val": val[float_key], "int8_val": val[int8_key]}


def _logits(float_onnx: Path, int8_onnx: Path, bundle: DataBundle) -> tuple[float, float, int]:
    sample = next(_batches(bundle.test, LOGIT_IMAGES))[0]
    return (*logit_difference(float_onnx, int8_onnx, sample), len(sample))


def _batches(dataset: Dataset, size: int = EVAL_BATCH) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The split in order, in batches of ``size`` (images as the network takes them, labels as int64)."""
    for x, y in DataLoader(dataset, batch_size=size, shuffle=False):
        yield x, torch.as_tensor(y).long()
