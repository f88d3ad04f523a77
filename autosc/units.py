"""Parsing and printing of the quantities users type: input sizes, MAC counts, byte sizes, durations."""

from __future__ import annotations

import math
import re

from .errors import AutoscError

#: Units are case-exact: "300m" could be milli or mega, so it is refused with the accepted spellings.
_MAC_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
#: Milliseconds per unit of a latency budget; a bare number is refused (is 1.5 seconds or milliseconds?).
_TIME_UNITS = {"us": 1e-3, "\u00b5s": 1e-3, "ms": 1.0, "s": 1e3}
#: Larger inputs would need more memory for one forward pass than a machine has (224 is ImageNet's).
MAX_INPUT_SIDE = 4096
_NUMBER = r"(?P<num>\d+(?:\.\d*)?|\.\d+)(?:[eE](?P<exp>[+-]?\d+))?"


def _split(text: str) -> tuple[float, str] | None:
    m = re.fullmatch(rf"\s*{_NUMBER}\s*(?P<unit>[A-Za-z%]*)\s*", text)
    if not m:
        return None
    value = float(m.group("num") + (f"e{m.group('exp')}" if m.group("exp") else ""))  # 1e400 -> inf, not an error
    return value, m.group("unit")


def input_size_text(options: dict) -> dict:
    """Flat options with an ``input_size`` tuple (as the Python API takes it) written ``"HxW"``, as the options
    and the recorded command hold it; other options as they are."""
    size = options.get("input_size")
    return {**options, "input_size": "x".join(str(v) for v in size)} if isinstance(size, tuple) else options


def parse_input_size(text: str | int | tuple[int, int]) -> tuple[int, int]:
    """``224`` -> (224, 224); ``32x48`` -> (32, 48) as (height, width)."""
    if isinstance(text, tuple):
        h, w = text
    elif isinstance(text, int):
        h = w = text
    else:
        m = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX*,]\s*(-?\d+))?\s*", str(text))
        if not m:
            raise AutoscError(f"cannot read input size {text!r}: give one integer (224) or HxW (32x48)")
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) is not None else h
    if h < 1 or w < 1:
        raise AutoscError(f"input size must be at least 1 pixel on each side, got {h}x{w}")
    if max(h, w) > MAX_INPUT_SIDE:
        raise AutoscError(f"input size {h}x{w} is larger than autosc handles ({MAX_INPUT_SIDE} px a side)")
    return int(h), int(w)


def parse_macs(text: str) -> tuple[int | None, float | None]:
    """A MACs budget: ``300M``, ``1.2G``, ``95000000`` -> (macs, None); ``60%`` -> (None, 0.6)."""
    parsed = _split(str(text))
    if parsed is None:
        raise AutoscError(
            f"cannot read MACs budget {text!r}: write a number with an optional K/M/G (300M, 1.2G) or a percentage (60%)"
        )
    value, unit = parsed
    if unit == "%":
        if not (value > 0 and math.isfinite(value)):
            raise AutoscError(f"budget {text!r}: a percentage must be a positive number such as 60%")
        return None, value / 100
    spellings = "K, M, G or T, upper case (300M, 1.2G), or a percentage (60%)"
    return _scaled(text, value, unit, _MAC_UNITS, ("budget", "MAC", "MACs"), spellings), None


def parse_bytes(text: str) -> int:
    """A memory budget: ``4MiB``, ``512KB``, ``1000000`` (bytes) -> bytes."""
    parsed = _split(str(text))
    if parsed is None:
        raise AutoscError(f"cannot read memory budget {text!r}: write a number with a unit such as 4MiB, 512KB or 2GB")
    value, unit = parsed
    spellings = "B, KB, MB, GB, KiB, MiB or GiB (as written)"
    return _scaled(text, value, unit, _BYTE_UNITS, ("memory budget", "byte", "bytes"), spellings)


def parse_latency(text: str) -> float:
    """A latency budget in milliseconds: ``1.5ms`` -> 1.5, ``800us`` -> 0.8, ``0.002s`` -> 2.0."""
    parsed = re.fullmatch(rf"\s*{_NUMBER}\s*(?P<unit>[A-Za-z\u00b5]*)\s*", str(text))
    if parsed is None:
        raise AutoscError(
            f"cannot read latency budget {text!r}: write a number with a unit such as 1.5ms, 800us or 0.002s"
        )
    value = float(parsed.group("num") + (f"e{parsed.group('exp')}" if parsed.group("exp") else ""))
    unit = parsed.group("unit")
    if unit not in _TIME_UNITS:
        said = f"unknown unit {unit!r}" if unit else "no unit"
        raise AutoscError(f"latency budget {text!r}: {said}; use us, ms or s (1.5ms, 800us, 0.002s)")
    ms = value * _TIME_UNITS[unit]
    if not (ms > 0 and math.isfinite(ms)):
        raise AutoscError(f"latency budget {text!r} must be a positive, finite time")
    return ms


def parse_latency_share(text: str) -> float:
    """A latency budget relative to the reference network's p50: ``60%`` or ``0.6x`` -> 0.6 (docs/algorithm.md,
    Latency budgets). Above 1 is refused: a network slower than the one it compresses is not a compression."""
    stripped = str(text).strip()
    number, scale = stripped[:-1], (100.0 if stripped.endswith("%") else 1.0)
    try:
        share = float(number) / scale
    except ValueError:
        raise AutoscError(f"cannot read latency budget {text!r}: write a share such as 60% or 0.6x") from None
    if not (0 < share <= 1 and math.isfinite(share)):
        raise AutoscError(f"latency budget {text!r} must be a share above 0 and at most 100% (0.6x, 60%)")
    return share


def is_latency_share(text: str) -> bool:
    """``60%`` and ``0.6x`` are shares of the reference network's p50; ``1.5ms`` is an absolute budget."""
    return str(text).strip().endswith(("%", "x"))


def format_ms(ms: float) -> str:
    """1.5 -> '1.500ms'; 0.25 -> '250us' (microseconds below a millisecond)."""
    return f"{ms * 1e3:.0f}us" if ms < 1 else f"{ms:.3f}ms"


def _scaled(
    text: str, value: float, unit: str, units: dict[str, int], words: tuple[str, str, str], spellings: str
) -> int:
    """``value`` times its unit, as a whole count of at least 1; ``words``: (what, one unit, many units)."""
    what, one, many = words
    if unit not in units:
        raise AutoscError(f"{what} {text!r}: unknown unit {unit!r}; use {spellings}")
    amount = value * units[unit]
    if not math.isfinite(amount):
        raise AutoscError(f"{what} {text!r} is not a finite number of {many}")
    if amount < 1:
        raise AutoscError(f"{what} {text!r} must be at least 1 {one}")
    return int(round(amount))


def format_count(n: float, digits: int = 2) -> str:
    """300774272 -> '300.77M' (decimal units, as MAC budgets are written)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{unit}"
    return f"{n:.0f}"


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}B"
