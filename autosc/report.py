"""The human-readable side of a compress run: ``report.md``, ``shape.png`` and ``dynamics.png`` (SPEC §7).

Everything here reads the plain ``report.json`` dict and the per-epoch metrics
the training code writes, so a report can be re-rendered from a finished run
folder without torch or the model. Only the keys SPEC §7 lists are required;
every other key may be missing or null and is then left out (or shown as "—")
rather than failing, because a half-finished or older run should still produce
something a person can read.

MAC accounting follows SPEC §5: ``macs.final`` is conv + linear, ``macs.final_resize``
the adaptors' bilinear MACs, and the MAC budget caps their sum.

The pictures use :class:`matplotlib.figure.Figure` with the Agg canvas directly,
never pyplot, so rendering touches no global backend or figure registry and
leaks nothing in long-lived processes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .errors import AutoscError
from .io import atomic_write
from .units import format_bytes, format_count

DASH = "—"
DPI = 120
SHAPE_FIGSIZE = (10.0, 5.0)  # inches: 1200 x 600 px at DPI
DYNAMICS_FIGSIZE = (11.0, 5.5)  # 1320 x 660 px
MAX_TICK_LABELS = 36  # more cell names than this are thinned to every k-th
AXES_WIDTH_PX = 1050  # roughly, inside SHAPE_FIGSIZE at DPI: to judge how crowded the cell names are
LABEL_LEVEL_HEIGHT = 0.14  # share of the data's height kept free above it per stacked adaptor label
ALPHA_STILL = 0.01  # |alpha_end - alpha_start| below this everywhere: the shape did not learn (SPEC §4)
REQUIRED = ("budget", "width", "macs", "params", "adaptors")
CONVENTIONS = {
    "standard": "standard: conv + linear, BN folded",
    "paper": "paper: thop-style, conv + linear + 4×BN",
}


# --------------------------------------------------------------------------- public API


def write_report(run_dir: str | os.PathLike, report: dict, metrics: list[dict]) -> list[Path]:
    """Write ``report.md``, ``shape.png`` and ``dynamics.png`` into ``run_dir``; return their paths.

    The markdown goes first, so a plotting failure still leaves the numbers on disk;
    each file is written atomically, so a crash never leaves half a picture.
    """
    run_dir = Path(run_dir)
    md = render_markdown(report, metrics)
    paths = [atomic_write(run_dir / "report.md", lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))]
    paths.append(run_dir / "shape.png")
    plot_shape(report, paths[-1])
    paths.append(run_dir / "dynamics.png")
    plot_dynamics(report, metrics, paths[-1])
    return paths


def render_markdown(report: dict, metrics: list[dict]) -> str:
    """The run as markdown a person can read in ten seconds: verdict, comparison table, adaptors, pictures."""
    _check_required(report)
    sections = [
        _title(report),
        *_warnings(report),
        _verdict(report),
        _main_table(report),
        _run_notes(report, metrics),
        _adaptor_table(report),
        "## Pictures\n\n![shape](shape.png)\n\n![dynamics](dynamics.png)",
        _reproduce(report),
        _environment(report),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def plot_shape(report: dict, path: str | os.PathLike) -> None:
    """Spatial size per cell, human vs learned, with the adaptors marked: where the network was shrunk.

    This is the picture of the seed paper's figures; it shows at a glance whether
    the learned network pays its MACs early (high resolution) or late (depth).
    """
    _check_required(report)
    fig = Figure(figsize=SHAPE_FIGSIZE, dpi=DPI, layout="constrained")
    _draw_shape(fig.add_subplot(), report)
    _save(fig, path)


def plot_dynamics(report: dict, metrics: list[dict], path: str | os.PathLike) -> None:
    """Each adaptor's factor s over training, and test accuracy and MACs per epoch against the budget.

    It answers "did the shape actually learn?" — SPEC §4 measured runs where the
    factors never moved — and whether accuracy and cost behaved while it did.
    """
    _check_required(report)
    fig = Figure(figsize=DYNAMICS_FIGSIZE, dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1.5, 1.0))
    factor_ax = fig.add_subplot(grid[:, 0])
    acc_ax = fig.add_subplot(grid[0, 1])
    macs_ax = fig.add_subplot(grid[1, 1], sharex=acc_ax)
    fallback = float(report.get("epochs") or 1)
    _epoch_axis(factor_ax, _draw_factors(factor_ax, report, metrics), fallback)
    right = _draw_accuracy(acc_ax, report, metrics) + _draw_macs(macs_ax, report, metrics)
    _epoch_axis(macs_ax, right, fallback)
    acc_ax.tick_params(labelbottom=False)
    fig.suptitle(f"{_model_line(report)}: learning dynamics")
    _save(fig, path)


# --------------------------------------------------------------------------- small helpers


def _get(data: Any, *keys: str | int) -> Any:
    """``data[k1][k2]...`` or None where any level is missing or not a container."""
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, (list, tuple)) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def _check_required(report: dict) -> None:
    missing = [k for k in REQUIRED if _get(report, k) is None]
    if missing:
        raise AutoscError(f"report lacks required key(s) {', '.join(missing)}; is it an autosc report.json?")


def _save(fig: Figure, path: str | os.PathLike) -> None:
    """PNG through the Agg canvas, atomically; then drop the figure's artists so nothing lingers."""
    FigureCanvasAgg(fig)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, facecolor="white"))
    finally:
        fig.clear()


def _macs(n: Any) -> str:
    return DASH if n is None else format_count(n)


def _bytes(n: Any) -> str:
    return DASH if n is None else format_bytes(n)


def _pct(part: Any, whole: Any) -> str:
    """Share with one decimal, e.g. ``95.5%``; a dash when either side is unknown."""
    if part is None or not whole:
        return DASH
    return f"{100 * part / whole:.1f}%"


def _acc(a: Any) -> str:
    """Top-1 with two decimals, as SPEC §8 writes it: run-to-run gaps are often under a tenth of a point."""
    return DASH if a is None else f"{100 * a:.2f}%"


def _size(size: Any) -> str:
    if not size:
        return DASH
    return "×".join(str(int(v)) for v in size)


def _duration(seconds: Any) -> str:
    if seconds is None:
        return DASH
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _cell(text: Any) -> str:
    """A markdown table cell: pipes escaped so a value cannot break the table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _final_total_macs(report: dict) -> int | None:
    """What the MAC budget caps (SPEC §3, §5): conv + linear plus the adaptors' resize MACs."""
    final = _get(report, "macs", "final")
    if final is None:
        return None
    return final + (_get(report, "macs", "final_resize") or 0)


def _budget_text(report: dict) -> str:
    parts = []
    if _get(report, "budget", "macs") is not None:
        parts.append(f"{format_count(report['budget']['macs'])} MACs")
    if _get(report, "budget", "memory_bytes") is not None:
        parts.append(f"{format_bytes(report['budget']['memory_bytes'])} activations")
    return " and ".join(parts) or "no budget"


def _model_line(report: dict) -> str:
    model = report.get("model") or "model"
    data = report.get("data")
    return f"{model} on {data}" if data else str(model)


def _convention(report: dict) -> str:
    name = _get(report, "macs", "convention") or "standard"
    return CONVENTIONS.get(name, f"{name} convention")


def _adaptor_labels(report: dict, n: int) -> list[str]:
    names = [a.get("name") or f"adaptor {i}" for i, a in enumerate(report.get("adaptors") or [])]
    return [names[i] if i < len(names) else f"adaptor {i}" for i in range(n)]


# --------------------------------------------------------------------------- markdown sections


def _title(report: dict) -> str:
    size = report.get("input_size")
    at = f" at {_size(size)} px" if size else ""
    return f"# AutoSC: {_model_line(report)}{at}, budget {_budget_text(report)}"


def _warnings(report: dict) -> list[str]:
    """Loud lines for a broken promise: the budget is hard (SPEC §3), so exceeding it is a bug to report."""
    out = []
    budget, total = _get(report, "budget", "macs"), _final_total_macs(report)
    if budget is not None and total is not None and total > budget:
        out.append(
            f"> **⚠️ WARNING: OVER BUDGET.** The final network costs {format_count(total)} MACs "
            f"({_pct(total, budget)} of the {format_count(budget)} budget). This should never happen; please report it."
        )
    budget, used = _get(report, "budget", "memory_bytes"), _get(report, "activation_bytes", "final")
    if budget is not None and used is not None and used > budget:
        out.append(
            f"> **⚠️ WARNING: OVER MEMORY BUDGET.** The final network needs {format_bytes(used)} of activations "
            f"({_pct(used, budget)} of the {format_bytes(budget)} budget). This should never happen; please report it."
        )
    return out


def _verdict(report: dict) -> str:
    """One bold sentence with the answer: accuracy at what cost, and against what."""
    acc = _get(report, "accuracy", "final")
    head = f"AutoSC: {_acc(acc)} top-1 at {_verdict_cost(report)}"
    if acc is None:
        head = f"AutoSC (no accuracy measured): {_verdict_cost(report)}"
    base = report.get("baseline")
    base_acc = _get(base, "accuracy")
    total, human = _final_total_macs(report), _get(report, "macs", "human")
    if base_acc is not None:
        gap = f"{100 * (acc - base_acc):+.2f} points" if acc is not None else "no AutoSC accuracy to compare"
        width = f" (width {base['width']:.2f})" if base.get("width") is not None else ""
        tail = f"; uniformly narrowed human network{width} at the same budget: {_acc(base_acc)}, {gap}"
    elif human and total:
        tail = f"; {human / total:.2f}× fewer MACs than the human network ({format_count(human)})"
    else:
        tail = ""
    return f"**{head}{tail}.**"


def _verdict_cost(report: dict) -> str:
    """``39.86M MACs (99.7% of the budget)``, plus activations when memory is what the budget caps."""
    total, budget = _final_total_macs(report), _get(report, "budget", "macs")
    cost = f"{_macs(total)} MACs" + (f" ({_pct(total, budget)} of the budget)" if budget else "")
    memory, mem_budget = _get(report, "activation_bytes", "final"), _get(report, "budget", "memory_bytes")
    if mem_budget and memory is not None:
        cost += f" and {format_bytes(memory)} activations ({_pct(memory, mem_budget)} of the memory budget)"
    return cost


def _main_table(report: dict) -> str:
    base = report.get("baseline") or None
    header = ["", "human", "autosc (this run)"] + (["baseline (narrowed human)"] if base else [])
    rows = [row if base else row[:3] for row in _main_rows(report, base or {})]
    return _table(header, rows)


def _main_rows(report: dict, base: dict) -> list[list[str]]:
    budget_macs, budget_mem = _get(report, "budget", "macs"), _get(report, "budget", "memory_bytes")
    human_mem, final_mem = _get(report, "activation_bytes", "human"), _get(report, "activation_bytes", "final")
    rows = [
        ["width multiplier", "1.00", f"{report['width']:.2f}", _fmt(base.get("width"), "{:.2f}")],
        [
            f"MACs ({_convention(report)})",
            _macs(_get(report, "macs", "human")),
            _macs(_get(report, "macs", "final")),
            _macs(base.get("macs")),
        ],
    ]
    if _get(report, "macs", "final_resize") is not None:
        rows.append(["+ resize MACs (bilinear, 4 per output)", "0", _macs(report["macs"]["final_resize"]), "0"])
    if budget_macs is not None:
        rows.append(
            [
                "% of MAC budget used",
                _pct(_get(report, "macs", "human"), budget_macs),
                _pct(_final_total_macs(report), budget_macs),
                _pct(base.get("macs"), budget_macs),
            ]
        )
    rows.append(
        [
            "params",
            _macs(_get(report, "params", "human")),
            _macs(_get(report, "params", "final")),
            _macs(base.get("params")),
        ]
    )
    if human_mem is not None or final_mem is not None:
        rows.append(
            [
                "activation memory (float32, batch 1)",
                _bytes(human_mem),
                _bytes(final_mem),
                _bytes(base.get("activation_bytes")),
            ]
        )
    if budget_mem is not None:
        rows.append(
            [
                "% of memory budget used",
                _pct(human_mem, budget_mem),
                _pct(final_mem, budget_mem),
                _pct(base.get("activation_bytes"), budget_mem),
            ]
        )
    rows.append(
        ["top-1 accuracy", _acc(_get(report, "accuracy", "human")), _accuracy_cell(report), _acc(base.get("accuracy"))]
    )
    if isinstance(report.get("latency_ms"), dict):
        rows.append(_latency_row(report["latency_ms"]))
    return rows


def _fmt(value: Any, pattern: str) -> str:
    return DASH if value is None else pattern.format(value)


def _accuracy_cell(report: dict) -> str:
    final, best = _get(report, "accuracy", "final"), _get(report, "accuracy", "best")
    if best is not None and best != final:
        return f"{_acc(final)} (best epoch {_acc(best)})"
    return _acc(final)


def _latency_row(latency: dict) -> list[str]:
    """p50 / p90 per network, with the speed-up over the human network: a MAC cut without a latency cut shows."""
    setting = ", ".join(
        part
        for part in (
            _fmt(latency.get("threads"), "{} thread" + ("" if latency.get("threads") == 1 else "s")),
            _fmt(latency.get("batch"), "batch {}"),
        )
        if part != DASH
    )
    label = f"ONNX latency p50 / p90 ({setting})" if setting else "ONNX latency p50 / p90"
    human_p50 = _get(latency, "human", "p50")

    def cell(which: str) -> str:
        p50, p90 = _get(latency, which, "p50"), _get(latency, which, "p90")
        if p50 is None:
            return DASH
        text = f"{p50:.2f} / {_fmt(p90, '{:.2f}')} ms"
        if which != "human" and human_p50:
            text += f" ({human_p50 / p50:.2f}× human speed)"
        return text

    return [label, cell("human"), cell("compressed"), cell("baseline")]


def _run_notes(report: dict, metrics: list[dict]) -> str:
    """How the result came about: widening, training length, export check."""
    notes = []
    widened = _get(report, "macs", "widened")
    if widened is not None:
        notes.append(
            f"AutoSC widened the human network to width {report['width']:.2f} ({format_count(widened)} MACs), "
            f"then learned where to shrink its feature maps down to {_macs(_final_total_macs(report))} MACs."
        )
    epochs = report.get("epochs") or (len(metrics) or None)
    if epochs is not None or report.get("seconds") is not None:
        count = f"{epochs} epoch" + ("" if epochs == 1 else "s") if epochs else "an unknown number of epochs"
        took = f" in {_duration(report['seconds'])}" if report.get("seconds") is not None else ""
        notes.append(f"Trained {count}{took}.")
    onnx = report.get("onnx")
    if isinstance(onnx, dict) and onnx.get("path"):
        details = [
            _fmt(onnx.get("opset"), "opset {}"),
            _fmt(onnx.get("exporter"), "{} exporter"),
            _fmt(onnx.get("max_abs_diff"), "max |ONNX − PyTorch| = {:.1e}"),
        ]
        details = [d for d in details if d != DASH]
        notes.append(f"ONNX: `{onnx['path']}`" + (f" ({', '.join(details)})." if details else "."))
    return " ".join(notes)


BRANCH_WORDS = {"full": "resize only", "low": "max-pool + resize"}  # what a collapsed adaptor kept


def _adaptor_table(report: dict) -> str:
    adaptors = report.get("adaptors") or []
    if not adaptors:
        return "## Adaptors\n\nNo adaptors were placed."
    collapsed = any(a.get("branch") for a in adaptors)
    rows = []
    for a in adaptors:
        start, end = a.get("alpha_start"), a.get("alpha_end")
        moved = f"{start:.2f} → {end:.2f} (Δ {end - start:+.3f})" if start is not None and end is not None else DASH
        row = [f"`{a.get('name', '?')}`", _size(a.get("human_size")), _size(a.get("size")), _fmt(a.get("s"), "{:.3f}")]
        rows.append([*row, moved, *([BRANCH_WORDS.get(a.get("branch"), DASH)] if collapsed else [])])
    headers = ["cell", "human size", "learned size", "factor s", "alpha moved", *(["kept"] if collapsed else [])]
    note = (
        "\n\nOnce the shape was fixed, each adaptor was collapsed to one branch (a plain resize to the learned size) "
        "and the weights were fine-tuned on it (`--collapse`)."
        if collapsed
        else ""
    )
    return "## Adaptors\n\n" + _table(headers, rows) + note + _stillness_note(adaptors)


def _stillness_note(adaptors: list[dict]) -> str:
    """Flag SPEC §4's pitfall: if no alpha moved, the "learned" shape is only the initial or projected one."""
    moves = [
        abs(a["alpha_end"] - a["alpha_start"])
        for a in adaptors
        if _get(a, "alpha_start") is not None and _get(a, "alpha_end") is not None
    ]
    if not moves or max(moves) >= ALPHA_STILL:
        return ""
    return (
        f"\n\n> Note: no alpha moved more than {max(moves):.1e}; the shape was not learned, "
        "only projected onto the budget (see SPEC §4). Train longer or give the alphas a larger step."
    )


def _reproduce(report: dict) -> str:
    command = report.get("command")
    if not command:
        return ""
    return f"## Reproduce\n\n```sh\n{command}\n```"


def _environment(report: dict) -> str:
    env = report.get("env")
    if not isinstance(env, dict) or not env:
        return ""
    return "## Environment\n\n" + "\n".join(f"- {key}: {value}" for key, value in env.items())


# --------------------------------------------------------------------------- shape picture


def _layer_series(report: dict) -> tuple[list[str], list[list[int]], list[list[int]], bool]:
    """Cell names and per-cell sizes (human, learned); falls back to the adaptors alone without ``layers``."""
    human = _get(report, "layers", "human") or []
    learned = _get(report, "layers", "learned") or []
    if human or learned:
        names = [e.get("name", str(i)) for i, e in enumerate(human if len(human) >= len(learned) else learned)]
        return names, [e["size"] for e in human], [e["size"] for e in learned], True
    adaptors = report["adaptors"]
    names = [a.get("name", str(i)) for i, a in enumerate(adaptors)]
    return names, [a["human_size"] for a in adaptors], [a["size"] for a in adaptors], False


def _adaptor_position(name: str, names: list[str]) -> int | None:
    """Index of the adaptor's cell: the exact name, else the longest cell name that prefixes it."""
    if name in names:
        return names.index(name)
    prefixes = [i for i, n in enumerate(names) if name.startswith(n + ".")]
    return max(prefixes, key=lambda i: len(names[i])) if prefixes else None


def _draw_shape(ax: Any, report: dict) -> None:
    names, human, learned, per_layer = _layer_series(report)
    square = all(len(s) < 2 or s[0] == s[1] for s in human + learned)
    for sizes, label, style in (
        (human, "human", {"color": "0.72", "lw": 5.0}),  # wide and pale: shows around the learned line where equal
        (learned, "learned (AutoSC)", {"color": "C0", "lw": 2.0}),
    ):
        _step(ax, sizes, 0, label + ("" if square else ", height"), style, "-")
        if not square:
            _step(ax, sizes, 1, label + ", width", style, "--")
    top = max((max(s) for s in human + learned if s), default=1)
    _cell_ticks(ax, names, _mark_adaptors(ax, report, names, top))
    ax.set_xlabel("cell (execution order)" if per_layer else "adaptor (no per-cell sizes in this report)")
    ax.set_ylabel("spatial size, px" + (" (height = width)" if square else " (solid: height, dashed: width)"))
    ax.grid(True, axis="y", alpha=0.3)
    ncol = len(ax.get_legend_handles_labels()[0])
    if ncol:  # above the axes, so it never hides data
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol, fontsize=9, frameon=False)
    ax.set_title(_shape_title(report), pad=24)


def _step(ax: Any, sizes: list[list[int]], dim: int, label: str, style: dict, ls: str) -> None:
    """A staircase: cell i's output size holds from x = i to i + 1, so each drop sits on the cell that makes it."""
    if not sizes:
        return
    y = [s[min(dim, len(s) - 1)] for s in sizes]
    x = np.arange(len(y) + 1)
    ax.step(x, y + y[-1:], where="post", ls=ls, label=label, **style)
    ax.plot(x[:-1], y, "o", ms=3, color=style["color"])


def _mark_adaptors(ax: Any, report: dict, names: list[str], top: float) -> list[int]:
    """A dotted line per adaptor with its factor and size change; returns the marked cell indices.

    Labels of neighbouring adaptors are stacked downwards instead of overlapping,
    and the y range grows to keep the stack clear of the data.
    """
    placed = sorted(
        ((x, a) for a in report["adaptors"] if (x := _adaptor_position(a.get("name", ""), names)) is not None),
        key=lambda p: p[0],
    )
    levels = _label_levels([x for x, _ in placed], gap=(len(names) + 1) / 10)
    ax.set_ylim(0, top * (1.12 + LABEL_LEVEL_HEIGHT * (max(levels, default=0) + 1)))
    for (x, a), level in zip(placed, levels, strict=True):
        ax.axvline(x, color="C3", ls=":", lw=1.4)
        ax.annotate(
            f"s={_fmt(a.get('s'), '{:.3f}')}\n{_size_change(a.get('human_size'), a.get('size'))}",
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -4 - 25 * level),
            textcoords="offset points",
            va="top",
            ha="left",
            fontsize=8,
            color="C3",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )
    if placed:
        ax.plot([], [], color="C3", ls=":", lw=1.4, label="shape adaptor (cell in red)")
    return [x for x, _ in placed]


def _label_levels(xs: list[int], gap: float) -> list[int]:
    """0 for a label with room to its left, one deeper than its neighbour's when closer than ``gap``."""
    levels: list[int] = []
    for i, x in enumerate(xs):
        levels.append(levels[-1] + 1 if i and x - xs[i - 1] < gap else 0)
    return levels


def _size_change(human: Any, learned: Any) -> str:
    """``32→27`` for square maps, ``64×96→51×77`` otherwise: as short as the label can be."""
    if human and learned and all(len(s) == 2 and s[0] == s[1] for s in (human, learned)):
        return f"{int(human[0])}→{int(learned[0])}"
    return f"{_size(human)}→{_size(learned)}"


def _cell_ticks(ax: Any, names: list[str], marked: list[int]) -> None:
    """Cell names as ticks, thinned to every k-th when crowded; adaptor cells always shown, in red."""
    step = max(1, math.ceil(len(names) / MAX_TICK_LABELS))
    ticks = {i for i in range(0, len(names), step) if step == 1 or all(abs(i - m) > 1 for m in marked)}
    ticks = sorted(ticks | set(marked))
    closest = min(np.diff(ticks), default=len(names)) * AXES_WIDTH_PX / (len(names) + 1)  # px between names
    rotation = 60 if closest >= 24 else 90  # steep enough that neighbouring names cannot overlap
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=rotation, ha="right", rotation_mode="anchor", fontsize=8)
    for label, i in zip(ax.get_xticklabels(), ticks, strict=True):
        if i in marked:
            label.set_color("C3")
    ax.set_xlim(-0.5, len(names) + 0.5)


def _shape_title(report: dict) -> str:
    macs = (
        f"MACs: human {_macs(_get(report, 'macs', 'human'))} → AutoSC {_macs(_final_total_macs(report))}"
        f" (width {report['width']:.2f}, incl. resize)"
    )
    return f"{_model_line(report)}, budget {_budget_text(report)}\n{macs}"


# --------------------------------------------------------------------------- dynamics picture


def _epochs(metrics: list[dict]) -> list[float]:
    return [float(m.get("epoch", i + 1)) for i, m in enumerate(metrics)]


def _trace_epochs(report: dict, metrics: list[dict], steps: np.ndarray) -> np.ndarray:
    """Map optimiser steps to fractional epochs: by the logged step of each epoch's end if any, else evenly."""
    ends = [(m["step"], e) for m, e in zip(metrics, _epochs(metrics), strict=True) if m.get("step") is not None]
    if ends:
        xs, ys = zip(*sorted(ends), strict=True)
        return np.interp(steps, (0, *xs), (ys[0] - 1, *ys), right=np.nan)
    n_epochs = report.get("epochs") or len(metrics) or 1
    last = steps.max() if steps.size else 0
    return steps / last * n_epochs if last else steps.astype(float)


def _initial_factors(report: dict) -> list[float | None]:
    """Each adaptor's factor before training, from ``alpha_start`` (SPEC §1: s = r + (1 - r) sigmoid(alpha)).

    The lower bound r is read back from the adaptor's own final ``s`` and ``sigma``
    when they pin it down, else SPEC's 0.5, so a run with another r still starts right.
    """
    out = []
    for a in report["adaptors"]:
        alpha, s, sigma = a.get("alpha_start"), a.get("s"), a.get("sigma")
        r = 0.5
        if s is not None and sigma is not None and sigma < 0.999:
            derived = (s - sigma) / (1 - sigma)
            r = derived if 0 <= derived < 1 else r
        out.append(None if alpha is None else r + (1 - r) / (1 + math.exp(-alpha)))
    return out


def _draw_factors(ax: Any, report: dict, metrics: list[dict]) -> list[float]:
    """One line per adaptor; returns the epochs it drew at, for the x axis."""
    rows = [(e, m["factors"]) for e, m in zip(_epochs(metrics), metrics, strict=True) if m.get("factors")]
    trace = report.get("alpha_trace") or []
    n = max([len(f) for _, f in rows] + [len(t[1]) for t in trace] + [len(report["adaptors"]) if not rows else 0])
    labels, start = _adaptor_labels(report, n), _initial_factors(report)
    start += [None] * (n - len(start))
    drawn: list[float] = []
    if trace:
        x = _trace_epochs(report, metrics, np.array([t[0] for t in trace], dtype=float))
        values = _padded([t[1] for t in trace], n)
        for j in range(n):
            ax.plot(x, values[:, j], color=f"C{j}", lw=1.2, alpha=0.8)
        drawn += [float(v) for v in x if np.isfinite(v)]
    if rows:
        values = _padded([f for _, f in rows], n)
        first = rows[0][0] - 1
        for j in range(n):
            x, y = [e for e, _ in rows], list(values[:, j])
            if not trace and start[j] is not None:
                x, y = [first, *x], [start[j], *y]
            ax.plot(x, y, "o" if trace else "o-", color=f"C{j}", ms=5 if len(x) <= 25 else 2.5, lw=1.6)
            drawn += x
    elif not trace:
        end = float(report.get("epochs") or 1)
        for j, a in enumerate(report["adaptors"]):
            x, y = [0.0, end], [start[j], a.get("s")]
            ax.plot(x, [np.nan if v is None else v for v in y], "o--", color=f"C{j}", ms=5, lw=1.2)
            drawn += x
    for j in range(n):
        ax.plot([], [], "o-", color=f"C{j}", label=labels[j])
    if n == 0:
        _empty(ax, "no adaptors")
    else:
        ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(n, 4), frameon=False)
    ax.set_ylabel("factor s (1 = human size)")
    ax.set_title(_factor_title(bool(trace), bool(rows)))
    ax.grid(True, alpha=0.3)
    return drawn


def _factor_title(trace: bool, rows: bool) -> str:
    if trace:
        return "adaptor factor s (lines: alpha steps, dots: epoch ends)"
    if rows:
        return "adaptor factor s per epoch (first point: before training)"
    return "adaptor factor s, before and after training (no per-epoch log)"


def _padded(rows: list[Sequence[float]], n: int) -> np.ndarray:
    """Ragged factor lists as an array, NaN where an entry is missing (NaN points are simply not drawn)."""
    out = np.full((len(rows), n), np.nan)
    for i, row in enumerate(rows):
        kept = list(row)[:n]
        out[i, : len(kept)] = [np.nan if v is None else v for v in kept]
    return out


def _series(metrics: list[dict], key: str) -> tuple[list[float], list[float]]:
    pairs = [(e, m[key]) for e, m in zip(_epochs(metrics), metrics, strict=True) if m.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _draw_accuracy(ax: Any, report: dict, metrics: list[dict]) -> list[float]:
    drawn: list[float] = []
    for key, label, style, color in (("test_acc", "test", "o-", "C0"), ("train_acc", "train", "s--", "0.5")):
        x, y = _series(metrics, key)
        if x:
            ax.plot(x, [100 * v for v in y], style, ms=4, label=label, color=color)
            drawn += x
    base_acc = _get(report, "baseline", "accuracy")
    if base_acc is not None:
        ax.axhline(100 * base_acc, color="C2", ls=":", lw=1.5, label=f"baseline {100 * base_acc:.2f}%")
    if drawn:
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
        ax.set_ylabel("top-1 %")
    else:
        _empty(ax, "no accuracy logged")
    ax.set_title("accuracy per epoch")
    ax.grid(True, alpha=0.3)
    return drawn


def _draw_macs(ax: Any, report: dict, metrics: list[dict]) -> list[float]:
    """Logged MACs against the budget line, in K/M/G with plain tick labels (no offset notation)."""
    x, y = _series(metrics, "macs")
    budget = _get(report, "budget", "macs")
    top = max([*y, budget or 0]) or 1
    unit, scale = next(((u, f) for u, f in (("G", 1e9), ("M", 1e6), ("K", 1e3)) if top >= f), ("", 1.0))
    if x:
        ax.plot(x, [v / scale for v in y], "o-", ms=4, color="C1", label="MACs of the shape in use")
    if x and budget is not None:
        ax.axhline(budget / scale, color="C3", ls="--", lw=1.5, label=f"budget {format_count(budget)}")
    if x:
        low, high = min([*y, budget or min(y)]) / scale, max([*y, budget or 0]) / scale
        pad = (high - low) * 0.2 or high * 0.02
        ax.set_ylim(low - pad, high + pad)
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        convention = _get(report, "macs", "convention") or "standard"
        ax.set_ylabel(f"MACs, {unit} ({convention})" if unit else f"MACs ({convention})")
    else:
        _empty(ax, "no MACs logged")
    ax.set_title("MACs per epoch vs budget" if budget is not None else "MACs per epoch (no MAC budget)")
    ax.grid(True, alpha=0.3)
    return x


def _epoch_axis(ax: Any, xs: list[float], fallback: float) -> None:
    """Whole-epoch ticks, with room around a lone epoch so single points are not pinned to the frame."""
    xs = xs or [fallback]
    low, high = min(xs), max(xs)
    pad = 0.5 if high - low < 2 else 0.04 * (high - low)
    ax.set_xlim(low - pad, high + pad)
    whole = list(range(math.ceil(low), math.floor(high) + 1))
    if 0 < len(whole) <= 12:
        ax.set_xticks(whole)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_yticks([])
