"""The run folder: where a compress run keeps everything it writes (docs/design.md, The run folder).

One :class:`RunFolder` names every file, so no other module spells a file name;
``run.json`` records the run's configuration, so ``--resume`` rebuilds the same
run from the folder alone.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import io
from ..errors import AutoscError

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run's files."""

    root: Path

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    def checkpoint(self, phase: str = "autosc") -> Path:
        return self.root / ("checkpoint.pt" if phase == "autosc" else f"{phase}_checkpoint.pt")

    def metrics(self, phase: str = "autosc") -> Path:
        return self.root / ("metrics.jsonl" if phase == "autosc" else f"{phase}_metrics.jsonl")

    def onnx(self, label: str) -> Path:
        """``model.onnx`` for the compressed network, ``<label>.onnx`` for the others (human, baseline)."""
        return self.root / ("model.onnx" if label == "compressed" else f"{label}.onnx")

    @property
    def frozen(self) -> Path:
        return self.root / "frozen.pt"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    # -- preparing and reading ------------------------------------------------------------------------
    def prepare(self, *, resume: bool, force: bool) -> None:
        """Check the folder fits the request (new, resumed or replaced) and that it can be written."""
        if resume:
            if not self.run_file.is_file():
                raise AutoscError(
                    f"nothing to resume in {self.root}: it holds no {RUN_FILE}; start a new run without --resume"
                )
            return
        if self.root.exists() and any(self.root.iterdir()):
            if not force:
                raise AutoscError(
                    f"{self.root} already holds a run; use --resume to continue it or --force to start over"
                )
            if not self.run_file.is_file():
                raise AutoscError(
                    f"--force only replaces autosc run folders, and {self.root} has no {RUN_FILE}; choose another --out"
                )
            shutil.rmtree(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise AutoscError(f"cannot write to {self.root} ({exc.strerror}); choose a writable --out") from exc

    def read_run(self) -> dict:
        return json.loads(self.run_file.read_text())

    def write_run(self, data: dict) -> None:
        io.write_json(self.run_file, data)

    def write_metrics(self, history: list[dict], phase: str = "autosc") -> None:
        io.atomic_write(
            self.metrics(phase), lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in history))
        )


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text.replace("%", "pct")).strip("-") or "run"


def default_run_dir(model: str, budget: str | None, memory: str | None) -> Path:
    """``exports/<model>-<budget>``: a builder reference contributes its file or module name."""
    name = Path(model.split(":")[0]).stem if ":" in model else model
    parts = [p for p in (budget, memory) if p is not None]
    return Path("exports") / _tag("-".join([name, *map(str, parts)]))
