"""What every benchmark that runs jobs shares, in one place: the grid with done-keys and resume, the machine stamp,
the rows, ``--summary``, the paired difference ± standard error, and the ONNX p50 of networks timed together.

Why one runner: a benchmark is hours of jobs on a shared 2-core machine, stopped and resumed; each job's row is
appended to a JSON-lines file as soon as it ends, and a job whose key is already in the file is skipped, so the
same command resumes a stopped benchmark and ``--summary`` reprints its tables from the file alone. Every row
carries the machine it ran on (a latency figure means nothing without the CPU) and the commit that ran it.

Timing is the product's own (:func:`autosc.latency.time_together`): a benchmark's milliseconds and a compress
run's are taken the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from autosc.latency import environment, time_together

if TYPE_CHECKING:
    from autosc.run.pipeline import Result
    from autosc.train.trainer import Trainer

#: Where every benchmark writes its results by default.
RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent

# -- the machine stamp --------------------------------------------------------------------------------


def commit() -> str | None:
    """The checkout's commit (short hash, ``+dirty`` with uncommitted changes to tracked files); None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def now() -> str:
    """The date and time (UTC, seconds): when a row was written."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stamp() -> dict:
    """What a row's figures depend on besides the job: the CPU model (``/proc/cpuinfo``), cores, the torch and
    onnxruntime versions (:func:`autosc.latency.environment`), the date and the commit."""
    return {**environment(), "date": now(), "commit": commit()}


# -- rows ---------------------------------------------------------------------------------------------


def load_rows(path: str | Path) -> list[dict]:
    """Every row of a results file; none if it does not exist yet.

    A ``.json`` file is an older benchmark's whole-file result (``{"env", "rows"}`` or ``{"env", "results"}``,
    written once at the end): its rows are read as they are, so ``--summary`` reprints what it reported.
    """
    path = Path(path)
    if not path.is_file():
        return []
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return list(data.get("rows", data.get("results", [])))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_row(path: str | Path, row: dict) -> None:
    """One JSON line at the end of ``path``, written as soon as a job ends (a stopped run keeps what it did)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def write_json(path: str | Path, data: dict) -> None:
    """``data`` as indented JSON (the folder is made if needed): one measurement that is not a row per job."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# -- the grid -----------------------------------------------------------------------------------------


def done_key(row: Mapping, fields: Sequence[str]) -> str:
    """The key that makes a row the result of a job: its values of ``fields`` (those it has), as sorted JSON."""
    return json.dumps({k: row[k] for k in sorted(fields) if k in row}, sort_keys=True)


def shard_of(jobs: list[dict], shard: str | None) -> list[dict]:
    """``"i/n"``: every n-th job from the i-th, so n processes split one grid; None: all of them."""
    if not shard:
        return jobs
    i, n = (int(v) for v in shard.split("/"))
    return jobs[i::n]


def run_grid(
    jobs: Iterable[dict],
    run: Callable[[dict], dict],
    out: str | Path,
    *,
    key: Sequence[str],
    shard: str | None = None,
    describe: Callable[[dict], str] | None = None,
) -> list[dict]:
    """Run every job whose key (:func:`done_key` over ``key``) is not yet in ``out``; all rows, old and new.

    ``run(job)`` returns the job's figures; the row is the job, the figures and the machine stamp, appended to
    ``out`` as soon as the job ends. ``run`` returns ``None`` for a job it skips (a refusal it has reported):
    no row, so the next call tries it again, and the grid goes on. An exception (Ctrl-C, a stop) ends the grid
    with the finished rows kept: the same call resumes. ``describe(row)`` is the progress line after ``[i/n]``.
    """
    out = Path(out)
    if out.suffix == ".json":
        raise SystemExit(f"error: {out} is a whole-file result of an older benchmark (--summary reads it); "
                         "new rows go to a .jsonl file")  # fmt: skip
    rows = load_rows(out)
    done = {done_key(r, key) for r in rows}
    todo = shard_of([j for j in jobs if done_key(j, key) not in done], shard)
    print(f"{len(todo)} jobs to run ({len(rows)} already in {out})", flush=True)
    machine = stamp() if todo else {}
    for i, job in enumerate(todo, 1):
        started = time.perf_counter()
        figures = run(job)
        if figures is None:
            print(f"[{i}/{len(todo)}] {done_key(job, key)}: skipped, no row (the next call tries it again)", flush=True)
            continue
        row = {**job, **figures}
        row["machine"] = {**machine, "date": now()}
        append_row(out, row)
        rows.append(row)
        text = describe(row) if describe else f"{done_key(row, key)} ({time.perf_counter() - started:.0f} s)"
        print(f"[{i}/{len(todo)}] {text}", flush=True)
    return rows


#: what a job that was stopped says: the grid ends there, and the same command resumes it.
STOPPED = "stopped: the finished jobs are in the results file; the same command resumes"


def trained_to_end(trainer: Trainer) -> Trainer:
    """``trainer`` if it trained to the end; one a signal stopped (``stop_signal``) ends the grid instead.

    Why: a stopped training returns normally (its state saved), so without this a SIGTERM mid-job wrote a row for
    a network trained a fraction of its epochs (benchmarks/RESULTS.md, the second family's scratch-width, 00:13).
    """
    if trainer.stop_signal is not None:
        raise SystemExit(STOPPED)
    return trainer


def completed(result: Result) -> Result:
    """``result`` of ``autosc.compress`` if the run completed; a stopped run (no report) ends the grid instead."""
    if not result.completed:
        raise SystemExit(STOPPED)
    return result


# -- the paired difference ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Paired:
    """``a - b`` seed by seed: the comparison that decides a benchmark (same seed: same images, same order), so
    one run's noise, larger than most effects here, cancels; the standard error says what the mean can tell."""

    seeds: tuple
    diffs: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.diffs) if self.diffs else float("nan")

    @property
    def std(self) -> float:
        return statistics.stdev(self.diffs) if self.n > 1 else 0.0

    @property
    def se(self) -> float:
        """The standard error of the mean; NaN for one pair (one pair has no spread)."""
        return self.std / self.n**0.5 if self.n > 1 else float("nan")

    @property
    def ahead(self) -> int:
        return sum(d > 0 for d in self.diffs)

    def __str__(self) -> str:
        return f"{self.mean:+.2f} ± {self.se:.2f}"


def cpu_of(row: Mapping) -> str:
    """The CPU model a row was measured on: pairs are formed only within one (oneDNN gives other numbers for the
    same seed on another)."""
    return row.get("machine", {}).get("cpu_model", "?")


def paired(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> Paired:
    """``a[s] - b[s]`` for every seed ``s`` (any key) both have, in sorted order."""
    seeds = tuple(sorted(set(a) & set(b)))
    return Paired(seeds, tuple(a[s] - b[s] for s in seeds))


# -- latency ------------------------------------------------------------------------------------------


def onnx_p50s(
    networks: Mapping[str, nn.Module | str | Path],
    input_size: tuple[int, int] | Mapping[str, tuple[int, int]],
    in_channels: int,
    *,
    runs: int,
    warmup: int = 10,
    block: int = 10,
    threads: int = 1,
) -> dict[str, float]:
    """ONNX Runtime p50 (ms, batch 1) of each network, all timed together in warm interleaved blocks by the
    product's own timer (:func:`autosc.latency.time_together`; a path is an ONNX file already exported)."""
    with quiet():
        timed = time_together(networks, input_size, in_channels, threads=threads, runs=runs, warmup=warmup,
                              block=block)  # fmt: skip
    return {label: t["p50"] for label, t in timed.items()}


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' warnings (they say nothing about the measurement)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- arguments ----------------------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose description is the first line of the benchmark's docstring."""
    return argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0])


def add_out(ap: argparse.ArgumentParser, name: str) -> None:
    """``--out`` (by default ``benchmarks/results/<name>``) and ``--summary`` (the tables from that file alone)."""
    ap.add_argument("--out", default=str(RESULTS / name), help=f"results file (default: results/{name})")
    ap.add_argument("--summary", action="store_true", help="only print the tables of the results file")


def ints(text: str) -> list[int]:
    """``"1,2"`` -> ``[1, 2]`` (seeds, thread counts)."""
    return [int(v) for v in text.split(",")]
