"""The public stages of a compress run, each with typed inputs and outputs, in pipeline order.

``compress`` (autosc/run/compress.py) calls them in order, and so may a benchmark or a notebook:
:func:`load_dataset` -> :func:`plan_network` -> :func:`train_network` (and :func:`train_baseline`) ->
:func:`freeze_and_save` -> :func:`export_networks` -> :func:`time_onnx` or :func:`check_latency_budget` ->
:func:`quantize_run` (``--quantize int8``) -> :func:`build_report`. They live by job: before training
(autosc/run/data.py), training (autosc/run/training.py), freezing, exporting and timing (autosc/run/measure.py),
INT8 (autosc/run/quantized.py) and the report (autosc/report/build.py). A stage given
no :class:`~autosc.run.folder.RunFolder` keeps nothing on disk but what it must (ONNX files go to the folder it
is given).
"""

from ..report.build import Context, Measured, build_report, cell_sizes, environment_info
from .data import human_spec, input_size, load_dataset, load_start_network, plan_network
from .measure import (
    CHECKED,
    LATENCY_ROUNDS,
    LATENCY_SHRINKS,
    LatencyCheck,
    check_latency_budget,
    export_networks,
    freeze_and_save,
    table_verdict,
    time_onnx,
)
from .quantized import quantize_run
from .retime import Retimer, shape_retimer
from .training import (
    BASELINE_FORMAT,
    TrainedBaseline,
    planned_accuracy,
    retrain_after_shrink,
    start_accuracy,
    train_baseline,
    train_network,
)

__all__ = [
    "BASELINE_FORMAT",
    "CHECKED",
    "LATENCY_ROUNDS",
    "LATENCY_SHRINKS",
    "Context",
    "LatencyCheck",
    "Measured",
    "Retimer",
    "TrainedBaseline",
    "build_report",
    "cell_sizes",
    "check_latency_budget",
    "environment_info",
    "export_networks",
    "freeze_and_save",
    "human_spec",
    "input_size",
    "load_dataset",
    "load_start_network",
    "plan_network",
    "planned_accuracy",
    "quantize_run",
    "retrain_after_shrink",
    "shape_retimer",
    "start_accuracy",
    "table_verdict",
    "time_onnx",
    "train_baseline",
    "train_network",
]
