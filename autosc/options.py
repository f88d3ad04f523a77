"""Declaring a configuration field once: its default, its help text and how the CLI shows it.

Every option of ``autosc compress`` is a field of one of the run configuration's
dataclasses (:mod:`autosc.config`); the CLI options, the preset keys and
``run.json`` are all derived from those fields, so an option is added in one place.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields
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


def check_choices(config: Any) -> None:
    """Refuse a field value outside the field's declared ``choices``, naming the option and the accepted values."""
    from .errors import AutoscError

    for f in fields(config):
        choices = f.metadata.get("choices")
        value = getattr(config, f.name)
        if choices and value is not None and value not in choices:
            flag = "--" + f.name.replace("_", "-")
            raise AutoscError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
