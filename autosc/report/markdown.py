"""``report.md``: the run as text a person can read in ten seconds (docs/algorithm.md, "The run folder").

MAC accounting follows docs/algorithm.md ("Cost conventions"): ``macs.final`` is
conv + linear, ``macs.final_resize`` the adaptors' bilinear MACs, and the MAC
budget caps their sum, ``macs.final_total``.
"""

from __future__ import annotations

from ..units import format_bytes, format_count
from ._format import DASH, acc, budget, budget_text, convention, duration, model_line, pct, size, table
from .quantized_md import int8_section
from .schema import Adaptor, Baseline, Latency, Report, Timing

ALPHA_STILL = 0.01  # |alpha_end - alpha_start| below this everywhere: the shape did not learn
STANDARD_NOTE = (
    "\n\nAn adaptor that replaces a human resize follows its cell run at stride 1; its human factor is 0.5, so a "
    "factor above 0.5 keeps resolution the human network gave up (docs/algorithm.md, Modes: standard and both)."
)
BRANCH_WORDS = {"full": "resize only", "low": "max-pool + resize"}  # what a collapsed adaptor kept
COLLAPSE_NOTE = (
    "\n\nOnce the shape was fixed, each adaptor was collapsed to one branch (a plain resize to the learned size) "
    "and the weights were fine-tuned on it (`--collapse`)."
)


def render_markdown(report: Report) -> str:
    """Verdict first, then the comparison table, the adaptors and the pictures: the answer before the detail.

    Only the report is read; the per-epoch log is what ``dynamics.png`` draws.
    """
    sections = [
        _title(report),
        *_warnings(report),
        _verdict(report),
        *([line] if (line := latency_verdict(report)) else []),
        _main_table(report),
        _run_notes(report),
        *([int8] if (int8 := int8_section(report)) else []),
        *([search] if (search := _strategy_search(report)) else []),
        *([shapes] if (shapes := _shape_search(report)) else []),
        _adaptor_table(report.adaptors),
        "## Pictures\n\n![shape](shape.png)\n\n![dynamics](dynamics.png)",
        f"## Reproduce\n\n```sh\n{report.command}\n```",
        "## Environment\n\n" + "\n".join(f"- {key}: {value}" for key, value in report.env.items()),
    ]
    return "\n\n".join(sections) + "\n"


def _title(report: Report) -> str:
    return f"# AutoSC: {model_line(report)} at {size(report.input_size)} px, budget {budget_text(report)}"


def _warnings(report: Report) -> list[str]:
    """Loud lines for a broken promise: a cap on an exact figure is hard (docs/algorithm.md, Width and budget
    projection); a measured one (latency) says how it fared in its own sentence."""
    out = []
    for term, limit in budget(report).terms():
        used = term.report_figures(report).get("final")
        if term.exact and used is not None and used > limit:
            out.append(
                f"> **⚠️ WARNING: OVER {term.noun.upper()} BUDGET.** The final network costs {term.format(used)} "
                f"({pct(used, limit)} of the {term.format(limit)} budget). This should never happen; please report it."
            )
    return out


def _verdict(report: Report) -> str:
    """One bold sentence with the answer: accuracy at what cost, and against what."""
    final = report.accuracy.final
    head = f"AutoSC: {acc(final)} top-1 at {_verdict_cost(report)}"
    if final is None:
        head = f"AutoSC (no accuracy measured): {_verdict_cost(report)}"
    base, human = report.baseline, report.macs.human
    if base is not None:
        gap = f"{100 * (final - base.accuracy):+.2f} points" if final is not None else "no AutoSC accuracy to compare"
        tail = (
            f"; uniformly narrowed human network (width {base.width:.2f}) at the same budget: "
            f"{acc(base.accuracy)}, {gap}"
        )
    else:
        total = report.macs.final_total
        tail = (
            f"; {human / total:.2f}× fewer MACs than the human network ({format_count(human)})"
            if total <= human
            else f"; {total / human:.2f}× the MACs of the human network ({format_count(human)})"
        )
    if report.accuracy.human is not None:
        tail += f"; the trained network it started from: {acc(report.accuracy.human)}"
    return f"**{head}{tail}.**"


def _how_started(report: Report) -> str:
    """The first sentence of the details: what the adaptors started from, in the run's mode (after the channel
    pruning, where the strategy pruned)."""
    pruning = (report.strategy or {}).get("pruning")
    if pruning is None:
        return _how_adapted(report)
    what = (
        f"Torch-Pruning removed channels (importance {pruning['importance']}, global ratio {pruning['ratio']:.3f}) "
        f"from {format_count(pruning['macs_before'])} to {format_count(pruning['macs_after'])} MACs and "
        f"{format_count(pruning['params_before'])} to {format_count(pruning['params_after'])} parameters"
    )
    name = report.strategy.get("chosen") or report.strategy["name"]
    if name == "prune":
        return f"Strategy prune: {what}; the shape was held at the identity ({format_count(report.macs.final_total)} MACs)."
    return f"Strategy {name}: {what} ({pruning['share']:.0%} of the cut); " + _how_adapted(report)


def _shape_search(report: Report) -> str | None:
    """``--shape-search``: the candidate shapes with their validation accuracy after BatchNorm re-estimation."""
    found = (report.strategy or {}).get("shape_search")
    if not found:
        return None
    rows = [[f"**{c['label']}**" if c["chosen"] else c["label"], ", ".join("x".join(map(str, s)) for s in c["sizes"]),
             acc(c["val"])] for c in found]  # fmt: skip
    return (
        "## Shape search\n\n`--shape-search` projected each candidate shape under the budget, re-estimated "
        "BatchNorm on training images and scored it on validation; training started from the best (bold).\n\n"
        + table(["candidate", "sizes", "validation"], rows)
    )


def _strategy_search(report: Report) -> str | None:
    """``--strategy auto``: every candidate split with its validation score; None for a strategy named."""
    candidates = (report.strategy or {}).get("candidates")
    if not candidates:
        return None
    rows = []
    for c in candidates:
        if "unreachable" in c:
            rows.append([c["strategy"], f"{c['share']:.0%}", "unreachable", DASH, DASH, DASH])
            continue
        rows.append([f"**{c['strategy']}**" if c["chosen"] else c["strategy"], f"{c['share']:.0%}", acc(c["val_before"]),
                     f"{acc(c['val_after'])} ({c['steps']} steps)", format_count(c["macs"]), duration(c["seconds"])])  # fmt: skip
    head = ["strategy", "pruning's share of the cut", "validation, start", "validation, fine-tuned", "MACs", "time"]
    return (
        "## Strategy search\n\n`--strategy auto` froze each split at the start it would train from, re-estimated "
        "BatchNorm, fine-tuned it briefly with distillation and kept the best on validation (bold).\n\n"
        + table(head, rows)
    )


def _how_adapted(report: Report) -> str:
    final = format_count(report.macs.final_total)
    if not any(a.kind == "standard" for a in report.adaptors):
        return (
            f"AutoSC widened the human network to width {report.width:.2f} "
            f"({format_count(report.macs.widened)} MACs), then learned where to shrink its feature maps "
            f"down to {final} MACs."
        )
    return (
        f"The human resizing cells ran at stride 1 under shape adaptors (width {report.width:.2f}; every adapted map "
        f"at its stride-1 size would be {format_count(report.macs.widened)} MACs); the adaptors learned how far to "
        f"shrink each map, to {final} MACs."
    )


def _verdict_cost(report: Report) -> str:
    """``39.86M MACs (99.7% of the budget)``, plus each other exact figure the budget caps (activations...)."""
    cap, total = budget(report), report.macs.final_total
    macs = cap.limit("macs")
    cost = f"{format_count(total)} MACs" + (f" ({pct(total, macs)} of the budget)" if macs else "")
    for term, limit in cap.terms():
        used = term.report_figures(report).get("final")
        if term.key != "macs" and term.exact and used is not None:
            cost += f" and {term.describe(used, cap)} ({pct(used, limit)} of the {term.noun} budget)"
    return cost


def _main_table(report: Report) -> str:
    """Human, this run and (with ``--baseline``) the narrowed human network, side by side."""
    with_base = report.baseline is not None
    human = "trained network" if report.start else "human"
    header = ["", human, "autosc (this run)"] + (["baseline (narrowed human)"] if with_base else [])
    rows = [row if with_base else row[:3] for row in _main_rows(report)]
    return table(header, rows)


def _main_rows(report: Report) -> list[list[str]]:
    """One row per quantity; the fourth cell is the baseline's (a dash where the baseline records none)."""
    macs, memory, base = report.macs, report.activation_bytes, report.baseline
    rows = [
        [
            "width multiplier",
            f"{_human_width(report):.2f}",
            f"{report.width:.2f}",
            f"{base.width:.2f}" if base else DASH,
        ],
        [f"MACs ({convention(report)})", format_count(macs.human), format_count(macs.final), _count(base, "macs")],
        ["+ resize MACs (bilinear, 4 per output)", "0", format_count(macs.final_resize), "0"],
    ]
    rows.append(
        ["params", format_count(report.params["human"]), format_count(report.params["final"]), _count(base, "params")]
    )
    # the baseline records no activation memory, hence its dashes
    rows.append(
        ["activation memory (float32, batch 1)", format_bytes(memory["human"]), format_bytes(memory["final"]), DASH]
    )
    rows += _budget_rows(report)
    # a fresh human network is not evaluated by a run, hence its dash; a trained start is, before compressing
    human_acc = acc(report.accuracy.human) if report.accuracy.human is not None else DASH
    rows.append(["top-1 accuracy (test)", human_acc, _accuracy_cell(report), acc(base.accuracy) if base else DASH])
    before = (report.start or {}).get("before")
    if before:  # the planned network before a step: what the cut cost before the fine-tune won it back
        rows.append(["top-1 before the fine-tune (test)", DASH, acc(before["test"]), DASH])
    if report.accuracy.val is not None:
        human_val = acc(report.accuracy.human_val) if report.accuracy.human_val is not None else DASH
        rows.append(["top-1 accuracy (validation)", human_val, acc(report.accuracy.val), DASH])
    rows.append(_latency_row(report.latency_ms))
    return rows


def _budget_rows(report: Report) -> list[list[str]]:
    """One "% of budget used" row per capped kind: human, this run and the baseline against the cap."""
    rows = []
    for term, limit in budget(report).terms():
        figures = term.report_figures(report)
        shares = [pct(v, limit) if (v := figures.get(k)) is not None else DASH for k in ("human", "final", "baseline")]
        rows.append([f"% of {term.noun} budget used", *shares])
    return rows


def _human_width(report: Report) -> float:
    """The width of the network the run started from: the trained one's, else the human network's 1."""
    return float(report.start["trained_width"]) if report.start else 1.0


def _count(base: Baseline | None, key: str) -> str:
    return DASH if base is None else format_count(getattr(base, key))


def _accuracy_cell(report: Report) -> str:
    final, best = report.accuracy.final, report.accuracy.best
    if best is not None and best != final:
        return f"{acc(final)} (best epoch {acc(best)})"
    return acc(final)


def _latency_row(latency: Latency) -> list[str]:
    """p50 / p90 per network, with the speed-up over the human network: a MAC cut without a latency cut shows."""
    threads = f"{latency.threads} thread" + ("" if latency.threads == 1 else "s")
    human_p50 = latency.human.p50

    def cell(timing: Timing | None, versus_human: bool = True) -> str:
        if timing is None:
            return DASH
        text = f"{timing.p50:.2f} / {timing.p90:.2f} ms"
        return text + (f" ({human_p50 / timing.p50:.2f}× human speed)" if versus_human else "")

    label = f"ONNX latency p50 / p90 ({threads}, batch {latency.batch})"
    return [label, cell(latency.human, versus_human=False), cell(latency.compressed), cell(latency.baseline)]


def latency_verdict(report: Report) -> str | None:
    """One plain sentence on a latency budget: met or not, as a share of the reference network timed alongside
    (the host's drift cancels), with the noise; then the milliseconds measured and predicted."""
    lat, budget = report.latency_ms, report.budget
    budget_ms = budget.get("latency_ms")
    if budget_ms is None or lat.budget_met is None:
        return None
    verdict = "**met**" if lat.budget_met else "**not met**"
    shrunk = _retime_sentence(lat.retimes) + _shrink_sentence(lat.shrinks, lat.shrink)
    predicted = (
        f"predicted {lat.predicted:.3f} ms by the latency model" if lat.predicted is not None
        else "not predicted (its channels were cut after training, and the latency model is fitted at the planned ones)"
    )  # fmt: skip
    timed = (
        f"measured p50 {lat.compressed.p50:.3f} ms against the start network's {lat.human.p50:.3f} ms (middle of "
        f"{lat.rounds} interleaved rounds), {predicted}"
    )
    if lat.table is not None:  # planned on a deployment device's timings: its prediction is the verdict
        return (
            f"Latency budget {budget_ms:.3f} ms ({lat.allowed_share:.1%} of the start network's latency there) {verdict} "
            f"on the timing table of {lat.table['device'].get('processor') or 'the device'} "
            f"({lat.table['path']}): predicted p50 {lat.predicted:.3f} ms there, {lat.share:.1%} of the start "
            f"network's. This machine is not that device and cannot confirm it (here: {lat.compressed.p50:.3f} ms "
            f"against {lat.human.p50:.3f} ms); on the device, `python time_probes.py --bench model.onnx --vs "
            "human.onnx` measures it."
        )
    if lat.share is None:  # a report from before the verdict by share: judged in milliseconds
        return f"Latency budget {budget_ms:.3f} ms {verdict}: {timed}, noise ±{lat.spread:.3f} ms.{shrunk}"
    asked = (
        f"{budget['latency_share']:.0%} of the start network's latency"
        if budget.get("latency_share") is not None
        else f"{budget_ms:.3f} ms ({lat.allowed_share:.1%} of the start network's latency when planned)"
    )
    over = "" if lat.budget_met else f", over by {100 * (lat.share / lat.allowed_share - 1):.1f}%"
    if not lat.budget_met and lat.share <= lat.allowed_share + lat.share_spread:
        over += " (within the noise)"
    elif not lat.budget_met and lat.tolerance and lat.share <= lat.allowed_share * (1 + lat.tolerance) + lat.share_spread:
        over += f" (within the end check's {lat.tolerance:.0%} tolerance, so it was not shrunk)"
    int8 = " (both as INT8 files: the budget is on the network that ships)" if lat.int8 else ""
    return (
        f"Latency budget {asked} {verdict}: the compressed network runs at {lat.share:.1%} "
        f"± {lat.share_spread:.1%} of it, timed together{int8}{over}; {timed}.{shrunk}"
    )


def _retime_sentence(retimes: list | None) -> str:
    """How often the learning shape was timed against the reference and moved (empty when it never was)."""
    if not retimes:
        return ""
    moved = [r for r in retimes if r["re_projected"]]
    off = max(abs(r["measured_share"] / r["predicted_share"] - 1) for r in retimes)
    return (
        f" While the shape learned it was timed against the start network {len(retimes)} "
        f"time{'s' if len(retimes) != 1 else ''} and projected again {len(moved)} "
        f"time{'s' if len(moved) != 1 else ''} (the latency model was at most {off:.1%} off)."
    )


def _shrink_sentence(shrinks: int | None, record: dict | None) -> str:
    """What a shrink after training cost, and what the fine-tune won back (empty when nothing was shrunk)."""
    if not shrinks:
        return ""
    times = f"{shrinks} time{'s' if shrinks != 1 else ''}"
    if record is None:  # a report from before the record
        return (
            f" The frozen network was shrunk {times} after training to meet it (the accuracy above is the shrunk "
            "network's, its BatchNorm statistics re-estimated on training images)."
        )
    tuned = (
        f", {record['fine_tuned']:.2%} after {record['steps']} steps of fine-tuning distilled from the trained network"
        if record["steps"]
        else " (no fine-tune: --shrink-steps 0)"
    )
    why = ""
    if record.get("confirmed_shares"):
        shares = ", ".join(f"{v:.1%}" for v in record["confirmed_shares"])
        why = f" (measured twice at {shares} of the start network's p50 before)"
    how = ""
    if record.get("pruned"):  # a held shape (--strategy prune): its channels were cut instead
        cuts = ", ".join(f"{p['macs_before'] / 1e6:.1f}M to {p['macs_after'] / 1e6:.1f}M MACs" for p in record["pruned"])
        how = f" by pruning its channels further ({cuts}, importance {record['pruned'][0]['importance']})"
    return (
        f" The frozen network was shrunk {times}{how} after training to meet it{why}: test accuracy {record['trained']:.2%} as "
        f"trained, {record['shrunk']:.2%} shrunk with BatchNorm re-estimated{tuned} (the accuracy above)."
    )


def _run_notes(report: Report) -> str:
    """How the result came about: widening, training length, export check."""
    onnx = report.onnx
    took = "" if report.seconds is None else f" in {duration(report.seconds)}"
    return " ".join(
        [
            _how_started(report),
            f"Trained {report.epochs} epoch" + ("" if report.epochs == 1 else "s") + f"{took}.",
            f"ONNX: `{onnx.path}` (opset {onnx.opset}, {onnx.exporter} exporter, "
            f"max |ONNX − PyTorch| = {onnx.max_abs_diff:.1e}"
            + (
                f"; exact-half resizes exported as 2x2 average pools: {onnx.pooled_resizes}"
                if onnx.pooled_resizes
                else ""
            )
            + ").",
        ]
    )


def _adaptor_table(adaptors: list[Adaptor]) -> str:
    """Where each adaptor sits, what it did to the size, and how far its alpha moved."""
    if not adaptors:
        return "## Adaptors\n\nNo adaptors were placed."
    collapsed = any(a.branch for a in adaptors)
    standard = any(a.kind == "standard" for a in adaptors)
    rows = []
    for a in adaptors:
        start, end = a.alpha_start, a.alpha_end
        moved = f"{start:.2f} → {end:.2f} (Δ {end - start:+.3f})" if start is not None and end is not None else DASH
        replaces = ["its human resize (cell at stride 1)" if a.kind == "standard" else DASH] if standard else []
        row = [f"`{a.name}`", *replaces, size(a.human_size), size(a.size), f"{a.s:.3f}", moved]
        rows.append(row + ([BRANCH_WORDS.get(a.branch, DASH)] if collapsed else []))
    headers = ["cell", *(["replaces"] if standard else []), "human size", "learned size", "factor s", "alpha moved",
               *(["kept"] if collapsed else [])]  # fmt: skip
    note = (COLLAPSE_NOTE if collapsed else "") + (STANDARD_NOTE if standard else "")
    return "## Adaptors\n\n" + table(headers, rows) + note + _stillness_note(adaptors)


def _stillness_note(adaptors: list[Adaptor]) -> str:
    """Flag the pitfall that alphas may not learn: then the "learned" shape is only the projected one."""
    moves = [
        abs(a.alpha_end - a.alpha_start) for a in adaptors if a.alpha_start is not None and a.alpha_end is not None
    ]
    if not moves or max(moves) >= ALPHA_STILL:
        return ""
    return (
        f"\n\n> Note: no alpha moved more than {max(moves):.1e}; the shape was not learned, "
        "only projected onto the budget (see docs/algorithm.md, Training). "
        "Train longer or give the alphas a larger step."
    )
