"""``autosc transfer``: AutoTL, a trained network fine-tuned on new data with its resizes learned (docs/algorithm.md, AutoTL).

A compress run with other defaults: the trained network's classifier is replaced for the new classes
(``new_head``), each human resizing layer becomes a standard shape adaptor started near the human factor
(``mode standard``, ``init_factor`` 0.55, the seed paper's AutoTL start), the branches blend, and there is no
budget unless one is given (then the same hard projection as ``compress``). The run folder is compress's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from ..adaptor import MODES
from ..cost.terms import TERMS
from ..errors import AutoscError
from .compress import Result, compress, read_preset

#: What transfer sets unless the caller does: the seed paper's AutoTL (SPEC: standard adaptors at s = 0.55).
#: No distillation: the start network's new classifier is untrained, so it has nothing to teach.
TRANSFER_DEFAULTS: dict[str, Any] = {
    "mode": "standard",
    "new_head": True,
    "init_factor": 0.55,
    "adaptor_mix": "blend",
    "distill": False,
}


def transfer(
    model: str | None = None,
    *,
    weights: str | Path | None = None,
    data: str | None = None,
    train_data: Dataset | DataLoader | None = None,
    test_data: Dataset | DataLoader | None = None,
    out: str | Path | None = None,
    preset: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
    **options: Any,
) -> Result:
    """Fine-tune the trained network ``model`` (its ``weights``) on ``data`` with its resizes learned (AutoTL).

    ``options`` are :func:`autosc.compress`'s (``epochs``, ``lr``, ``budget``, ``init_factor``, ...); those in
    :data:`TRANSFER_DEFAULTS` may be overridden. Without ``budget``/``memory``/``latency`` the learned shape
    is kept as it is. Writes ``out`` (default ``exports/<model>-transfer-<data>``) as ``compress`` does.
    """
    if weights is None and not resume:
        raise AutoscError(
            "transfer starts from a trained network: give --weights FILE (what torch.save(model.state_dict()) wrote)"
        )
    typed = read_preset(preset) if preset is not None else {}
    typed.update({k: v for k, v in options.items() if v is not None})
    # A resumed run takes its configuration from run.json: only what the caller typed is compared with it there,
    # never transfer's defaults (they would contradict a run started with other options, or a compress run).
    given = typed if resume else _with_defaults(typed)
    if out is None and model is not None:
        tag = re.sub(r"[^A-Za-z0-9._]", "-", f"{Path(str(model).split(':')[0]).stem}-transfer-{data or 'data'}")
        out = Path("exports") / tag
    return compress(
        model, weights=str(weights) if weights is not None else None, data=data, train_data=train_data,
        test_data=test_data, out=out, resume=resume, force=force, quiet=quiet, verb="transfer", **given,
    )  # fmt: skip


def _with_defaults(typed: dict[str, Any]) -> dict[str, Any]:
    """``typed`` over :data:`TRANSFER_DEFAULTS`, and no budget unless one is typed.

    The AutoTL start factor belongs to the standard adaptors: with a ``mode`` that has none (``autosc``) it is
    left out unless typed, so that the mode's refusal of an unused ``--init-factor`` concerns only the user's own.
    """
    given = {**TRANSFER_DEFAULTS, **typed}
    mode = MODES.get(given["mode"]) if isinstance(given.get("mode"), str) else None
    if "init_factor" not in typed and mode is not None and not mode.standard:
        del given["init_factor"]
    if not any(given.get(t.option) is not None for t in TERMS.values()):
        given["no_budget"] = True
    return given
