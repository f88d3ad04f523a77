"""The Python API the CLI calls: the same functions, usable from a notebook."""

from __future__ import annotations

from .cost import count, fvcore_macs, thop_macs
from .cost.counters import CONVENTIONS, example_input
from .errors import AutoscError
from .models import ModelSpec, default_input_size
from .units import parse_input_size


def count_model(
    model: str,
    *,
    input_size: str | int | tuple[int, int] | None = None,
    width: float = 1.0,
    num_classes: int | None = None,
    in_channels: int = 3,
    convention: str = "standard",
    cross_check: bool = False,
) -> dict:
    """Build a network by name and count it; the dict is what ``autosc count --json`` prints."""
    if convention not in CONVENTIONS:
        raise AutoscError(f"unknown --convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    size = parse_input_size(input_size if input_size is not None else default_input_size(model))
    spec = ModelSpec(model, width=width, num_classes=num_classes, in_channels=in_channels)
    net = spec.build()
    report = count(net, size, convention=convention)
    result = {
        "model": model,
        "width": width,
        "num_classes": num_classes,
        "in_channels": in_channels,
        **report.to_dict(),
    }
    if cross_check:
        x = example_input(net, size)
        standard = report.macs if convention == "standard" else count(net, size, cells=False).macs
        result["cross_check"] = {
            "flop_counter (FLOPs/2)": standard,
            "fvcore (conv/linear handles)": fvcore_macs(net, x),
            "thop (paper convention)": thop_macs(net, x),
        }
    return result
