"""The run folder: where a compress run keeps everything it writes (docs/algorithm.md, The run folder).

One :class:`RunFolder` names every file, so no other module spells a file name;
``run.json`` records the run's configuration, so ``--resume`` rebuilds the same
run from the folder alone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .. import io
from ..cost.terms import TERMS
from ..errors import AutoscError
from ..formats import RUN_FORMAT, migrate_run
from ..models import INSTANCE_PREFIX

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
#: Seconds a new run waits for the lock: a run killed a moment ago (SIGKILL to a torchrun group) releases it
#: only once its last process has exited.
LOCK_GRACE = 3.0
#: Every file a run writes; ``--force`` deletes these (and their temporaries) and nothing else.
OWN_FILES = frozenset(
    {
        RUN_FILE, "checkpoint.pt", "metrics.jsonl", "baseline_checkpoint.pt", "baseline_metrics.jsonl",
        "frozen.pt", "frozen.shape.json", "model.onnx", "human.onnx", "baseline.onnx", "model.int8.onnx",
        "human.int8.onnx",
        "report.json", "report.md", "shape.png", "dynamics.png", "pruned_start.pt",
    }
)  # fmt: skip
#: The write probe's name (a temporary of this name: autosc/io.py's pattern, so it counts as autosc's own).
PROBE = "write-test"


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

    def int8(self, label: str) -> Path:
        """The INT8 file beside :meth:`onnx`'s: ``model.int8.onnx``, ``human.int8.onnx``."""
        return self.onnx(label).with_suffix(".int8.onnx")

    @property
    def frozen(self) -> Path:
        return self.root / "frozen.pt"

    @property
    def pruned_start(self) -> Path:
        """The trained start's weights after the strategy's pruning step: a resumed run starts from them again."""
        return self.root / "pruned_start.pt"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    # -- opening: checks, the lock, clean-up ---------------------------------------------------------
    @contextmanager
    def session(self, *, resume: bool, force: bool) -> Iterator[None]:
        """Hold the folder for one run: checked, created, locked; a refused start removed again.

        The lock is an OS file lock (it dies with the process, so a crashed run
        never blocks the next one), taken before anything else is written; the
        checks run again once it is held, so two runs started at the same moment
        cannot both pass them. ``--force`` deletes nothing here: the previous
        run's files go only when the new run writes its ``run.json``
        (:meth:`write_run`), once its options, data and plan were accepted.
        """
        self._check(resume=resume, force=force)
        created = [p for p in (self.root, *self.root.parents) if not p.exists()]  # innermost first
        self._make()
        with self._locked():
            before = _identity(self.run_file)
            try:
                self._probe()
                self._check(resume=resume, force=force)
                self._remove_stale_temporaries()
                yield
            except BaseException as exc:
                self._clean_up(exc, ours=not resume and _identity(self.run_file) not in (None, before), created=created)
                raise

    def _clean_up(self, exc: BaseException, *, ours: bool, created: list[Path]) -> None:
        """A refused or failed start leaves nothing behind: a new run that wrote its ``run.json`` and then failed
        before its first checkpoint has nothing to resume, and its ``run.json`` would refuse the retry; a folder
        (and parents such as ``exports/``) made for a run that holds no ``run.json`` is removed again."""
        if ours and isinstance(exc, Exception) and not self.checkpoint().exists():
            self._remove_own_files()
        if created and not self.run_file.exists():
            self._remove_own_files()
            (self.root / LOCK_FILE).unlink(missing_ok=True)
            for folder in created:  # innermost first, each only where now empty
                with suppress(OSError):
                    folder.rmdir()

    def _check(self, *, resume: bool, force: bool) -> None:
        if resume and force:
            raise AutoscError("--resume continues a run and --force replaces it: give one of them")
        if self.root.is_dir():
            self._refuse_odd_entries()
        if resume:
            if not self.run_file.is_file():
                raise AutoscError(
                    f"nothing to resume in {self.root}: it holds no {RUN_FILE}; start a new run without --resume"
                )
            return
        if self.root.exists() and not self.root.is_dir():
            raise AutoscError(f"--out {self.root} is a file, not a folder; choose a folder for the run")
        if not self.root.is_dir() or not self._entries(ignore_own_lock=True):
            return
        if not force:
            raise AutoscError(f"{self.root} already holds a run; use --resume to continue it or --force to start over")
        if _is_protected(self.root):
            raise AutoscError(f"--force will not clear {self.root}: it is the current, home or root folder")
        if not self.run_file.is_file():
            raise AutoscError(
                f"--force only replaces autosc run folders, and {self.root} has no {RUN_FILE}; choose another --out"
            )
        foreign = [name for name in self._entries(ignore_own_lock=True) if not _is_own(name)]
        if foreign:
            shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
            raise AutoscError(
                f"--force only deletes autosc's own files, and {self.root} also holds {shown}; "
                "move them away or choose another --out"
            )

    def _refuse_odd_entries(self) -> None:
        """Every name autosc writes in the folder (its files, their temporaries, the lock) must be a regular file: a
        symbolic link there would send a write, a truncation or a deletion to its target outside the folder."""
        for name in self._entries(ignore_own_lock=False):
            if name == LOCK_FILE or _is_own(name):
                io.refuse_non_regular(self.root / name)

    def _make(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def _unwritable(self, exc: OSError) -> AutoscError:
        """The one line for a folder a run cannot write in (making it, the probe, the lock)."""
        return AutoscError(f"cannot write to {self.root} ({exc.strerror}); choose a writable --out")

    def _probe(self) -> None:
        """Refuse a folder autosc cannot write to before hours of training. The probe is a new file (``O_EXCL``:
        never a path that exists, so never a user's file or a link's target), named as autosc's temporaries."""
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{PROBE}.", suffix=".tmp", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise self._unwritable(exc) from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with os.fdopen(self._open_lock(), "r+") as handle:
            self._acquire(handle)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open_lock(self) -> int:
        """The lock file, opened without following a symbolic link (its target may be anywhere) and only if it is
        a regular file: the lock is the first thing a run writes, so it is also the first write refused."""
        path = self.root / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise io.not_regular(path, stat.S_IFLNK) from exc
            raise self._unwritable(exc) from exc
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise io.not_regular(path, mode)
        return fd

    def _acquire(self, handle: IO[str]) -> None:
        """Take the lock, waiting :data:`LOCK_GRACE` seconds for a run that was just killed to finish exiting."""
        deadline = time.monotonic() + LOCK_GRACE
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        raise AutoscError(f"{self.root} is in use by another autosc run ({owner}); wait for it or choose another --out")

    def _entries(self, *, ignore_own_lock: bool) -> list[str]:
        return [p.name for p in self.root.iterdir() if not (ignore_own_lock and p.name == LOCK_FILE)]

    def _remove_own_files(self) -> None:
        for name in self._entries(ignore_own_lock=True):
            if _is_own(name):
                (self.root / name).unlink(missing_ok=True)

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of autosc's own atomic writes that a killed run left behind (its own lock is held: none is
        live). Only the names autosc/io.py makes for autosc's own files: a user's ``.notes.backup.tmp`` stays."""
        for name in self._entries(ignore_own_lock=True):
            if _is_own_temporary(name):
                (self.root / name).unlink(missing_ok=True)

    def read_run(self) -> dict:
        """``run.json`` at the current format, an older one migrated (docs/algorithm.md, File formats)."""
        return migrate_run(json.loads(self.run_file.read_text()), where=str(self.run_file))

    def write_run(self, data: dict) -> None:
        """A new run's ``run.json``, tagged with its format: ``data`` holds every key (model, config, command, plan
        with its start, plan_summary).

        The previous run's files (``--force``; the session checked they are all autosc's own) are removed only
        now, once the new run's options, data, start and plan were accepted: a refused ``--force`` changes no file.
        """
        self._remove_own_files()
        io.write_json(self.run_file, {"format": RUN_FORMAT, **data})

    def write_metrics(self, history: list[dict], phase: str = "autosc") -> None:
        io.atomic_write(
            self.metrics(phase), lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in history))
        )


def _is_own(name: str) -> bool:
    """A name autosc writes in a run folder (``.write-test``: the probe of earlier versions)."""
    return name in OWN_FILES or name == f".{PROBE}" or _is_own_temporary(name)


def _is_own_temporary(name: str) -> bool:
    """A temporary that autosc/io.py's atomic writer (or the write probe) makes for one of autosc's own files."""
    target = io.temporary_target(name)
    return target is not None and (target in OWN_FILES or target == PROBE)


def _identity(path: Path) -> tuple[int, int, int] | None:
    """Which file ``path`` is now (None: none): an atomic write always puts a new file in place."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def _is_protected(root: Path) -> bool:
    """The current folder (or one above it), the home folder and the file-system root are never cleared."""
    resolved, here = root.resolve(), Path.cwd().resolve()
    return resolved in (Path(resolved.anchor), Path.home().resolve()) or resolved == here or resolved in here.parents


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "-", text.replace("%", "pct")).strip("-") or "run"


def default_run_dir(model: str, budget: Mapping[str, str | int | None]) -> Path:
    """``exports/<model>-<limits>``: each budget option given (``{"budget": "25M", ...}``, by option name) adds its
    text as the kind tags it; a builder reference contributes its file or module name."""
    if model.startswith(INSTANCE_PREFIX):  # a module instance: its class name
        name = model.rsplit(".", 1)[-1]
    else:
        name = Path(model.split(":")[0]).stem if ":" in model else model
    parts = [t.tag(str(budget[t.option])) for t in TERMS.values() if budget.get(t.option) is not None]
    return Path("exports") / _tag("-".join([name, *map(str, parts)]))
