"""The typer application every command registers with, its console, and the JSON printer the commands share."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="autosc: compress a CNN to a MACs or memory budget by learning where to shrink its feature maps.",
)
console = Console()


@app.callback()
def _root() -> None:
    """autosc: compress a CNN to a MACs or memory budget by learning where to shrink its feature maps."""


def print_json(data: dict) -> None:
    """``data`` as indented JSON on stdout (the ``--json`` output of every command)."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
