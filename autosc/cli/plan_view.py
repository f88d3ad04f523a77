"""``autosc plan``'s table: the width, the adaptor places, the MACs envelope and, with a latency budget, its
latency envelope, printed from the plan's plain dict (``Plan.to_dict()``, what ``--json`` prints)."""

from __future__ import annotations

from rich.table import Table

from ..cost.budget import Budget
from ..cost.terms import TERMS
from ..planning.plan import NOTE_KEYS
from ..units import format_bytes, format_count, format_ms
from .app import console


def print_plan(model: str, result: dict) -> None:
    """The plan of ``model`` for a person: header, adaptor table, MACs, activations and latency envelopes."""
    standard = result.get("mode", "autosc") != "autosc"
    _print_header(model, result, standard)
    console.print(_adaptor_table(result["adaptors"], standard))
    _print_macs(result, standard)
    a = result["activation_bytes"]
    console.print(
        f"activations: human {format_bytes(a['human'])}, widened {format_bytes(a['widened'])}, projected {format_bytes(a['projected'])}"
    )
    if result.get("latency_ms") is not None:  # a plan without a latency budget writes null (or, before, no key)
        print_latency(result["latency_ms"], result["budget"]["latency_ms"])
    _print_budget_use(result)


def _print_header(model: str, result: dict, standard: bool) -> None:
    """The network, its input size and budget, the width (and the trained start's), the mode's adaptors."""
    h, w = result["input_size"]
    console.print(f"[bold]{model}[/bold] at {h}x{w}, budget {Budget.from_dict(result['budget']).describe()}")
    console.print(f"width {result['width']:g} ({result['width_mode']})")
    if result.get("trained_width") is not None:
        console.print(f"trained network: {result['weights']} at width {result['trained_width']:g}")
    for key in NOTE_KEYS:
        if result.get(key):
            console.print(result[key])
    pruning = result.get("pruning")
    if pruning is not None:  # --strategy prune or compound: what the pruning step removed before the adaptors
        held = "; the shape is held at the identity" if pruning["strategy"] == "prune" else ""
        console.print(
            f"strategy {pruning['strategy']}: Torch-Pruning ({pruning['importance']}, global ratio {pruning['ratio']:.3f}) "
            f"pruned {format_count(pruning['macs_before'])} to {format_count(pruning['macs_after'])} MACs, "
            f"{pruning['share']:.0%} of the cut{held}"
        )
    if any(a.get("kind") == "input" for a in result["adaptors"]):
        console.print("adaptor 1 resizes the input image before its cell (--input-adaptor)")
    if standard:
        count = sum(a.get("kind") == "standard" for a in result["adaptors"])
        console.print(
            f"mode {result['mode']}: {count} adaptors replace the human resizes (their cells run at stride 1)"
        )


def _adaptor_table(adaptors: list[dict], standard: bool) -> Table:
    """One row per shape adaptor: where it sits, its human and projected sizes and its factor."""
    table = Table(title="shape adaptors (identity init, then projected under the budget)")
    columns = ("#", "after cell", *(("replaces", "map at stride 1") if standard else ()), "human size",
               "projected size", "factor s")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col in ("after cell", "replaces") else "right")
    for i, a in enumerate(adaptors, start=1):
        kind = (
            "human resize" if a.get("kind") == "standard" else "-",
            "x".join(map(str, a.get("stride1_size", a["human_size"]))),
        )
        table.add_row(
            str(i), a["name"], *(kind if standard else ()), "x".join(map(str, a["human_size"])),
            "x".join(map(str, a["size"])), f"{a['s']:.4f}",
        )  # fmt: skip
    return table


def _print_macs(result: dict, standard: bool) -> None:
    """The MACs envelope: human, widened, (identity start), projected and floor."""
    m = result["macs"]
    console.print(f"MACs ({m['convention']} convention; bilinear resize counted apart and inside the budget)")
    for label, value, extra in _macs_rows(result, standard):
        console.print(f"  {label:<55} {format_count(value):>10}{extra}")


def _print_budget_use(result: dict) -> None:
    """One line per capped kind: what the projected identity shape uses of it, in the kind's own words."""
    for key, use in (result.get("budget_use") or {}).items():  # null in a plan summary of version 1
        term, used = TERMS.get(key), use["projected"]
        if term is None or used is None:
            continue
        console.print(
            f"budget use of the projected shape: {term.format(used)} of {term.format(use['limit'])} "
            f"({100 * used / use['limit']:.2f}%)"
        )


def _macs_rows(result: dict, standard: bool) -> list[tuple[str, int, str]]:
    """(label, MACs, what follows) per line of the MACs envelope."""
    m, width = result["macs"], result["width"]
    projected_total = m["projected"] + m["projected_resize"]
    start = "trained" if result.get("trained_width") else "human"
    widened = "identity shape" if not standard else "every adapted map at stride 1"
    rows = [
        (f"{start} network (width {result.get('trained_width') or 1:g})", m["human"], ""),
        (f"widened (width {width:g}, {widened})", m["widened"], f" + {format_count(m['widened_resize'])} resize"),
    ]
    if standard:
        rows.append(
            (
                f"identity start (the human shape, width {width:g})",
                m["start"],
                f" + {format_count(m['start_resize'])} resize",
            )
        )
    rows.append(
        (
            f"projected identity shape (P = {result['projection_scale']:.4f})",
            m["projected"],
            f" + {format_count(m['projected_resize'])} resize = {format_count(projected_total)}",
        )
    )
    rows.append(("smallest reachable (every adapted map at its floor)", m["floor"], ""))
    return rows


def print_latency(lat: dict, budget_ms: float) -> None:
    """The latency envelope: the human network measured, the rest predicted by the latency model."""
    threads = "1 thread" if lat["threads"] == 1 else f"{lat['threads']} threads"
    console.print(f"latency (ONNX Runtime p50, {threads}, batch {lat['batch']}; budget {format_ms(budget_ms)})")
    rows = [
        ("human network (measured)", lat["human_measured"]),
        ("widened, identity shape (predicted)", lat["widened"]),
        ("projected identity shape (predicted)", lat["projected"]),
        ("smallest reachable (predicted)", lat["floor"]),
    ]
    for label, value in rows:
        if value is not None:
            console.print(f"  {label:<55} {format_ms(value):>10}")
    fit = lat["model_fit"]
    console.print(
        f"  latency model: worst in-sample error {100 * fit['max_abs_error']:.1f}% over {fit['probes']} probe shapes"
    )
