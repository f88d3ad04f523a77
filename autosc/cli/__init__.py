"""The ``autosc`` command line: a thin typer layer over the Python API.

``app.py`` holds the typer application, ``options.py`` the options (derived from the :class:`RunConfig`
fields), ``commands.py`` the commands, ``plan_view.py`` the plan's table; this module is the entry point and
its one error boundary.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from rich.console import Console

from ..errors import AutoscError
from . import commands  # noqa: F401  (registers the commands with the app)
from .app import app


def main(argv: list[str] | None = None) -> int:
    """Entry point, and the one error boundary: a user's error is one line and exit code 2, never a traceback.

    Usage errors, bad input (:class:`AutoscError`), a full disk or an unwritable path, and running out of
    memory are the user's to fix; anything else is a bug in autosc, reported in one line that points to the
    full traceback in a log file.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    _private_matplotlib_folder()
    try:
        result = app(args=argv, prog_name="autosc", standalone_mode=False)
    except AutoscError as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    except MemoryError:
        err.print("error: out of memory; lower --batch-size, --input-size or --width", markup=False)
        return 2
    except OSError as exc:  # a full disk, a permission, a path that is a folder: the user's to fix
        where = f": {exc.filename}" if exc.filename else ""
        err.print(f"error: {exc.strerror or exc}{where}", markup=False)
        return 2
    except Exception as exc:
        # typer's usage errors (bad option, missing argument) carry format_message and exit_code;
        # typer vendors click in recent releases, so they are matched by shape, not by class.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            where = (
                f"autosc {ctx.info_name} --help" if ctx is not None and ctx.info_name != "autosc" else "autosc --help"
            )
            err.print(f"error: {exc.format_message()} (see {where})", markup=False)
            return int(exc.exit_code)
        if type(exc).__name__ == "Abort":
            err.print("aborted", markup=False)
            return 1
        log = _write_traceback(exc)
        err.print(
            f"error: internal error in autosc (a bug, please report it): {type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0][:200]}; full traceback in {log}",
            markup=False,
        )
        return 1
    return result if isinstance(result, int) else 0


#: Internal-error logs kept in the temporary folder: a new one removes the user's older ones beyond these.
KEEP_ERROR_LOGS = 10


def _write_traceback(exc: BaseException) -> str:
    """The full traceback of an internal error, in a temporary log file whose path the error line names."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="autosc-error-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(traceback.format_exception(exc)))
    _prune_error_logs(Path(path).parent, KEEP_ERROR_LOGS)
    return path


def _prune_error_logs(folder: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` of this user's ``autosc-error-*.log`` in ``folder``: logs of a
    recurring error would otherwise pile up in /tmp. Another user's files and symbolic links are left alone."""
    logs = []
    for path in folder.glob("autosc-error-*.log"):
        with contextlib.suppress(OSError):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
                logs.append((info.st_mtime_ns, path.name, path))
    for *_, old in sorted(logs, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _private_matplotlib_folder() -> None:
    """Point matplotlib's configuration and font cache at a temporary folder removed at exit, unless the user
    chose one (``MPLCONFIGDIR``) or matplotlib is loaded already.

    Otherwise drawing the report makes ``~/.config/matplotlib`` and writes ``~/.cache/matplotlib``: a command
    leaves nothing in the home folder it was not asked to (docs/reliability.md, What autosc writes outside the
    run folder). matplotlib reads the variable when it is first imported, which is when a report is drawn.
    """
    if os.environ.get("MPLCONFIGDIR") or "matplotlib" in sys.modules:
        return
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="autosc-matplotlib-")
    os.environ["MPLCONFIGDIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


__all__ = ["app", "main"]
