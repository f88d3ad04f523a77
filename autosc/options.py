"""Declaring a configuration field once: its default, its help text and how the CLI shows it.

Every option of ``autosc compress`` is a field of one of the run configuration's
dataclasses (:mod:`autosc.config`); the CLI options, the preset keys and
``run.json`` are all derived from those fields, so an option is added in one place.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field
from typing import Any


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    cli_type: type | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field that carries its CLI help.

    ``flag`` overrides the option's spelling (default ``--field-name``, and
    ``--x/--no-x`` for booleans); ``cli_type`` the type the command line reads
    when the field accepts several (a width is "auto" or a number); ``cli=False``
    keeps a field out of the command line (set from a preset or Python only).
    """
    meta = {"help": help, "choices": choices, "flag": flag, "cli_type": cli_type, "cli": cli}
    return field(default=default, metadata=meta)


def help_text(f: Field) -> str:
    return f.metadata.get("help", "")
