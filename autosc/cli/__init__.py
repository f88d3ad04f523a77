"""The ``autosc`` command line: a thin typer layer over the Python API.

``app.py`` holds the typer application, ``options.py`` the options (derived from the :class:`RunConfig`
fields), ``commands.py`` the commands, ``plan_view.py`` the plan's table; this module is the entry point and
its one error boundary.
"""

from __future__ import annotations

import os

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


def _write_traceback(exc: BaseException) -> str:
    """The full traceback of an internal error, in a temporary log file whose path the error line names."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="autosc-error-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(traceback.format_exception(exc)))
    return path


__all__ = ["app", "main"]
