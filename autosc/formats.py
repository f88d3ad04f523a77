"""The versions of the JSON files a run writes, and the one place that reads older ones (docs/algorithm.md,
File formats).

``run.json``, ``report.json`` and the shape spec (``frozen.shape.json``, and inside ``frozen.pt``) carry a
``format`` tag, ``autosc-<kind>/<version>``. Writers write every key at the current version, None where a value
does not apply; each file type has one ``migrate_*`` that brings an older file up to the current version, so its
readers index keys plainly and never restate a default. What an older version left out, and what it meant, is
written down here once, as one step per version. A file from a newer version is refused in one line.

To change a format: write the new key always, raise the version, and add a step that fills it in older files
(tests/unit/test_formats.py reads the committed files of every version).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .cost.budget import SETTINGS
from .cost.terms import TERMS
from .errors import AutoscError

RUN_FORMAT = "autosc-run/7"
REPORT_FORMAT = "autosc-report/8"
SHAPE_FORMAT = "autosc-shape/3"

#: What each file is called in a message.
_NAMES = {"autosc-run": "autosc run file", "autosc-report": "autosc report", "autosc-shape": "autosc shape spec"}

Step = Callable[[dict, str], dict]


def version(data: Any, current: str, where: str) -> int:
    """The version of ``data`` in ``current``'s kind; a file of another kind, or of a newer version, is refused.

    Version 1 of ``run.json`` and ``report.json`` had no tag; the shape spec was tagged from the start.
    """
    kind, latest = current.rsplit("/", 1)
    name = _NAMES[kind]
    if not isinstance(data, dict):
        raise AutoscError(f"{where} is not an {name}: it holds {type(data).__name__}, not a JSON object")
    tag = data.get("format")
    if tag is None and kind != "autosc-shape":
        return 1
    found, _, number = str(tag).rpartition("/")
    if found != kind or not number.isdigit():
        raise AutoscError(f"{where} is not an {name} (format {tag!r}, expected {current})")
    if int(number) > int(latest):
        raise AutoscError(f"{where} is {tag}, newer than this autosc reads ({current}): upgrade autosc to read it")
    return int(number)


def _migrate(data: Any, current: str, steps: dict[int, Step], where: str) -> dict:
    """``data`` (not changed) brought to ``current`` by the steps from its version on, tagged ``current``."""
    found = version(data, current, where)
    out = copy.deepcopy(data)
    for step in range(found, int(current.rsplit("/", 1)[1])):
        out = steps[step](out, where)
    out.pop("format", None)
    return {"format": current, **out}


def migrate_budget(budget: dict) -> dict:
    """A budget dict with every registered kind (None where uncapped) and every setting; version 1 wrote a kind
    only where capped and the latency settings only under a latency budget. Unknown keys stay, so that
    :meth:`~autosc.cost.budget.Budget.from_dict` refuses them by name."""
    known = {**{k: budget.get(k) for k in TERMS}, **{k: budget.get(k, v) for k, v in SETTINGS.items()}}
    return {**known, **{k: v for k, v in budget.items() if k not in known}}


def migrate_plan(plan: dict) -> dict:
    """A network config (``run.json``'s ``plan``, a checkpoint's ``config``; :meth:`BudgetedNetwork.config`) with
    the keys version 1 wrote only off their defaults. A config holding them all is returned as it is, so a
    checkpoint (tagged by its own format, autosc/io.py) goes through it whatever wrote it."""
    out = dict(plan)
    if isinstance(out.get("budget"), dict):
        out["budget"] = migrate_budget(out["budget"])
    for key, value in (("mode", "autosc"), ("standard_cells", []), ("init_factor", None), ("branches", None),
                       ("low_branch", "max"), ("mix", "blend"), ("latency_table", None),
                       ("identity_held", False), ("searched_alphas", None),
                       ("input_cell", None), ("latency_int8", False)):  # fmt: skip
        out.setdefault(key, value)
    if "latency_calibration" not in out:  # a latency run from before calibration projected with the ratio 1
        latency = isinstance(out.get("budget"), dict) and out["budget"].get("latency_ms") is not None
        out["latency_calibration"] = 1.0 if latency else None
    return out


def _adaptor_places(adaptors: list[dict]) -> list[dict]:
    """Version 1 wrote an adaptor's ``kind`` only for ``standard``, and ``stride1_size`` (the map it resizes)
    only where a cell at or before it runs at stride 1, that is where it differs from ``human_size``."""
    return [{"kind": "autosc", "stride1_size": a.get("human_size"), **a} for a in adaptors]


# -- run.json ---------------------------------------------------------------------------------------------


def _run_1(data: dict, where: str) -> dict:
    if "args" in data:  # a run folder from before the typed config: flat arguments beside the model
        from .config import RunConfig  # the configuration imports the packages that import this module

        flat = {"val_split": 0.0, "device_data": "off", **data.pop("args"), "model": data["model"]}
        data["config"] = RunConfig.from_flat(flat, where=where).to_dict()
    else:
        config = data["config"]
        # a run started before the validation split trained on every training image: it goes on doing so
        config["dataset"] = {"val_split": 0.0, **config.get("dataset", {})}
        # and one started before device-resident data read through the per-image loader: the same batches on
        config["train"] = {"device_data": "off", **config.get("train", {})}
    data["plan"] = {**migrate_plan(data["plan"]), "start": data["plan"].get("start", {"sha256": None})}
    summary = data.get("plan_summary")
    if isinstance(summary, dict):  # what `autosc plan` printed: the same config keys, latency only under one
        summary = migrate_plan(summary)
        summary.setdefault("latency_ms", None)
        summary.setdefault("budget_use", None)  # not recorded before version 2
        summary["adaptors"] = _adaptor_places(summary.get("adaptors", []))
        data["plan_summary"] = summary
    return data


def _run_2(data: dict, where: str) -> dict:
    # a run started before the BatchNorm re-estimation evaluated with the running averages: it goes on doing so
    data["config"]["train"] = {"precise_bn": 0, **data["config"]["train"]}
    return data


def _run_3(data: dict, where: str) -> dict:
    # a network shrunk at the end of a run from before the fine-tune had its BatchNorm re-estimated only
    data["config"]["train"] = {"shrink_steps": 0, **data["config"]["train"]}
    # a budget without the latency share and reference (a run planned before they were timed): none then
    data["plan"] = {**migrate_plan(data["plan"]), "start": data["plan"]["start"]}
    if isinstance(data.get("plan_summary"), dict):
        data["plan_summary"] = migrate_plan(data["plan_summary"])
    return data


def _run_4(data: dict, where: str) -> dict:
    # a run started before the shape was re-timed during training goes on without it
    data["config"]["train"] = {"retime": False, **data["config"]["train"]}
    return data


def _run_5(data: dict, where: str) -> dict:
    # a run from before the strategies learned the shape alone: no pruning step, no search (the plan's own new keys,
    # identity_held, input_cell and searched_alphas, are filled by migrate_plan)
    data["plan"] = {**migrate_plan(data["plan"]), "start": data["plan"]["start"]}
    if isinstance(data.get("plan_summary"), dict):
        data["plan_summary"] = {"pruning": None, "auto": None, "shape_search": None,
                                **migrate_plan(data["plan_summary"])}  # fmt: skip
    return data


def _run_6(data: dict, where: str) -> dict:
    # a run planned before the planned network was scored: its accuracy before the fine-tune is unknown
    if isinstance(data.get("plan_summary"), dict):
        data["plan_summary"] = {"before": None, **data["plan_summary"]}
    return data


def migrate_run(data: Any, where: str = "run.json") -> dict:
    """``run.json`` at :data:`RUN_FORMAT`: version 1 had no tag, omitted the plan's default keys and its
    ``start`` without ``--weights``; older still, flat ``args`` instead of ``config``, and a config without the
    validation split or device-resident data (runs that go on as they started); version 2 had no
    ``precise_bn`` (off then); version 3's budgets had no ``latency_share`` or ``latency_reference_ms``; version 4
    had no ``retime`` (off then); version 5 had no strategies (the shape alone: no ``plan_summary.pruning``,
    ``auto`` or ``shape_search``); version 6 had no ``plan_summary.before``."""
    steps = {1: _run_1, 2: _run_2, 3: _run_3, 4: _run_4, 5: _run_5, 6: _run_6}
    return _migrate(data, RUN_FORMAT, steps, where)


# -- report.json ------------------------------------------------------------------------------------------

#: Keys version 1 (or an older report) omitted, with what their absence meant.
_REPORT_1 = {"baseline": None, "seconds": None, "start": None}
_ACCURACY_1 = {"best": None, "human": None, "val": None, "human_val": None}
_LATENCY_1 = {"baseline": None, "predicted": None, "rounds": None, "spread": None, "budget_met": None,
              "shrinks": None}  # fmt: skip
_ADAPTOR_1 = {"alpha_start": None, "alpha_end": None, "branch": None, "s_start": None}


def _report_1(data: dict, where: str) -> dict:
    data = {**data, **{k: data.get(k, v) for k, v in _REPORT_1.items()}}
    data["budget"] = migrate_budget(data["budget"])
    data["accuracy"] = {**_ACCURACY_1, **data["accuracy"]}
    data["onnx"] = {"pooled_resizes": 0, **data["onnx"]}
    data["latency_ms"] = {**data["latency_ms"], **{k: data["latency_ms"].get(k, v) for k, v in _LATENCY_1.items()}}
    data["adaptors"] = [{**_ADAPTOR_1, **a} for a in _adaptor_places(data["adaptors"])]
    return data


def _report_2(data: dict, where: str) -> dict:
    data["train"] = {"precise_bn": 0, **data["train"]}  # evaluated with the running averages then
    return data


#: What version 3 of ``latency_ms`` left out: the verdict by share of the reference network (judged in ms then).
_LATENCY_3 = {"share": None, "share_spread": None, "allowed_share": None, "shrink": None, "table": None}


def _report_3(data: dict, where: str) -> dict:
    data["train"] = {"shrink_steps": 0, **data["train"]}  # a shrunk network was not fine-tuned then
    data["budget"] = migrate_budget(data["budget"])
    data["latency_ms"] = {**data["latency_ms"], **{k: data["latency_ms"].get(k, v) for k, v in _LATENCY_3.items()}}
    return data


def _report_4(data: dict, where: str) -> dict:
    data["train"] = {"retime": False, **data["train"]}  # the shape was not re-timed during training then
    # and the end check shrank a network over by more than the noise alone (tolerance 0 then)
    tolerance = 0.0 if data["latency_ms"].get("share") is not None else None
    data["latency_ms"] = {**data["latency_ms"], "retimes": None, "tolerance": tolerance}
    return data


def _report_5(data: dict, where: str) -> dict:
    data.setdefault("strategy", None)  # before the strategies: the shape alone, nothing recorded
    return data


def _report_6(data: dict, where: str) -> dict:
    data.setdefault("quantized", None)  # before --quantize: float files only
    data["latency_ms"] = {**data["latency_ms"], "int8": data["latency_ms"].get("int8")}  # float timings then
    return data


def _report_7(data: dict, where: str) -> dict:
    if isinstance(data.get("start"), dict):  # a trained start scored only before compressing then
        data["start"] = {"before": None, **data["start"]}
    return data


def migrate_report(data: Any, where: str = "report.json") -> dict:
    """``report.json`` at :data:`REPORT_FORMAT`: version 1 had no tag and left out what was None (the latency
    budget's fields, the baseline's timing, ``seconds``, ``start``, an adaptor's optional fields) and a budget's
    uncapped kinds; version 2 had no ``train.precise_bn`` (off then); version 3 had no latency share, reference or
    verdict by share; version 4 had no ``train.retime`` (off then), ``latency_ms.retimes`` or ``latency_ms.tolerance`` (0 then);
    version 5 had no ``strategy``; version 6 had no ``quantized`` (no INT8 file then); version 7 had no
    ``start.before``."""
    steps = {1: _report_1, 2: _report_2, 3: _report_3, 4: _report_4, 5: _report_5, 6: _report_6, 7: _report_7}
    return _migrate(data, REPORT_FORMAT, steps, where)


# -- frozen.shape.json ------------------------------------------------------------------------------------


def _shape_1(data: dict, where: str) -> dict:
    if isinstance(data.get("budget"), dict):
        data["budget"] = migrate_budget(data["budget"])
    data.setdefault("low_branch", "max")
    # no branch: the two-branch mix, frozen as it trained
    data["adaptors"] = [{**a, "branch": a.get("branch")} for a in _adaptor_places(data.get("adaptors", []))]
    return data


def _shape_2(data: dict, where: str) -> dict:
    if isinstance(data.get("budget"), dict):  # without the latency share and reference: none then
        data["budget"] = migrate_budget(data["budget"])
    return data


def migrate_shape(data: Any, where: str = "the shape spec") -> dict:
    """A shape spec at :data:`SHAPE_FORMAT`: version 1 wrote ``low_branch`` only for ``avg``, an adaptor's
    ``branch`` only where it kept one, its ``kind`` and ``stride1_size`` only off the default; version 2's budget
    had no latency share or reference."""
    return _migrate(data, SHAPE_FORMAT, {1: _shape_1, 2: _shape_2}, where)
