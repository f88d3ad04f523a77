"""A compress run: its folder, its progress display, its public stages and the orchestration over them."""

from .compress import Result, command_line, compress, read_preset
from .folder import RUN_FILE, RunFolder, default_run_dir
from .progress import Display
from .stages import (
    TrainedBaseline,
    build_report,
    cell_sizes,
    check_latency_budget,
    export_networks,
    freeze_and_save,
    input_size,
    load_dataset,
    plan_network,
    time_onnx,
    train_baseline,
    train_network,
)
from .transfer import TRANSFER_DEFAULTS, transfer

__all__ = [
    "RUN_FILE",
    "Display",
    "Result",
    "RunFolder",
    "TrainedBaseline",
    "build_report",
    "cell_sizes",
    "check_latency_budget",
    "command_line",
    "compress",
    "default_run_dir",
    "export_networks",
    "freeze_and_save",
    "input_size",
    "load_dataset",
    "time_onnx",
    "plan_network",
    "read_preset",
    "train_baseline",
    "train_network",
    "transfer",
    "TRANSFER_DEFAULTS",
]
