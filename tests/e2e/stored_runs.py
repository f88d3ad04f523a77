"""Run folders and files the reliability tests start from (tests/e2e/test_reliability_*.py)."""

from pathlib import Path

from autosc import io
from autosc.config import RunConfig


def stored_run(folder: Path) -> None:
    folder.mkdir()
    config = RunConfig.from_flat({"model": "mobilenet_v2_cifar", "budget": "8M", "data": "synthetic", "epochs": 1})
    stored = {"model": "mobilenet_v2_cifar", "config": config.to_dict(), "command": "autosc compress ...", "plan": {}}
    io.write_json(folder / "run.json", stored)  # version 1 (no format tag), as every run.json had a command


def evil_builder(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "imported"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef build(**kw):\n    raise SystemExit(0)\n")
    return evil, marker
