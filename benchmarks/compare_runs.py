"""Compare two compress run folders: report.json and metrics.jsonl, timings, environment and command aside.

What a refactor must leave unchanged for a fixed seed: sizes, MACs, params, accuracy, alphas and every
per-epoch figure. Each report.json is read at the current format first (``autosc.formats.migrate_report``), so a
run folder of an older version compares key by key with a new one. Prints each difference (``+`` only in the second, ``-`` only in the first, ``~`` changed),
or "identical".

    python -m benchmarks.compare_runs OLD_RUN_DIR NEW_RUN_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autosc.formats import migrate_report

IGNORED = {"p50", "p90", "p99", "seconds", "env", "command"}  # wall-clock figures and where it ran


def strip(value: object) -> object:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in IGNORED}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def differences(a: object, b: object, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a:
                out.append(f"+ {path}.{key} = {json.dumps(b[key])[:80]}")
            elif key not in b:
                out.append(f"- {path}.{key} = {json.dumps(a[key])[:80]}")
            else:
                out += differences(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"~ {path}: {json.dumps(a)[:80]} -> {json.dumps(b)[:80]}"]


def compare(old: Path, new: Path) -> list[str]:
    def report(run: Path) -> object:
        return strip(migrate_report(json.loads((run / "report.json").read_text())))

    def metrics(run: Path) -> object:
        return [strip(json.loads(line)) for line in (run / "metrics.jsonl").read_text().splitlines()]

    return differences(report(old), report(new), "report") + differences(metrics(old), metrics(new), "metrics")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    args = ap.parse_args()
    found = compare(args.old, args.new)
    print("\n".join(found) if found else "identical (timings, environment and command aside)")


if __name__ == "__main__":
    main()
