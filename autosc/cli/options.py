"""The commands' options: the shared arguments, and the options derived from the :class:`RunConfig` fields.

Each option is declared once, on its config field (autosc/options.py); ``config_options`` turns the fields of
a command's groups into typer options, so the CLI, the presets and ``run.json`` cannot disagree.
"""

from __future__ import annotations

import inspect
import typing
from typing import Annotated

import typer

from ..config import RunConfig, default_of, field_types
from ..models import list_models
from .app import app

ModelArg = Annotated[
    str,
    typer.Argument(help=f"Zoo name ({', '.join(list_models())}) or path/to/file.py:build or pkg.module:build."),
]
InputSizeOpt = Annotated[
    str | None, typer.Option("--input-size", help="224 or HxW such as 32x48 (default: the family's own).")
]
WidthOpt = Annotated[float, typer.Option("--width", help="Channel multiplier; channels are rounded to multiples of 8.")]
ClassesOpt = Annotated[int | None, typer.Option("--num-classes", help="Classifier outputs (default: the family's).")]
InChannelsOpt = Annotated[int, typer.Option("--in-channels", help="Input image channels.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]

#: the ``--help`` panel of each config group (None: the run's own options)
PANELS = {
    "plan": "Model and budget",
    "dataset": "Data",
    "train": "Training",
    "export": "Export and timing",
    None: "Run",
}


def config_options(groups: tuple[str | None, ...], only: tuple[str, ...] | None = None) -> list[inspect.Parameter]:
    """Typer options for the :class:`RunConfig` fields of ``groups`` (or only the fields named in ``only``), derived
    from the fields themselves.

    Every option defaults to None ("not given"), so a preset's value or the
    field's own default applies; ``--help`` shows that default beside the help.
    """
    hints = field_types()
    params = []
    for group, f in RunConfig.option_fields():
        if group not in groups or not f.metadata.get("cli", True) or (only is not None and f.name not in only):
            continue
        kind = f.metadata.get("cli_type") or _base_type(hints[f.name])
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        if kind is bool and "/" not in flag and f.metadata.get("flag") is None:
            flag = f"{flag}/--no-{f.name.replace('_', '-')}"
        default = default_of(f)
        help_text = f.metadata.get("help", "") + (f" (default: {default})" if default not in (None, False) else "")
        info = typer.Option(flag, help=help_text, rich_help_panel=PANELS[group], show_default=False)
        annotation = Annotated[kind | None, info]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    return params


def _base_type(hint: object) -> type:
    """The one type an option reads from the command line: ``int | None`` -> int, ``list[str] | None`` -> list[str]."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0]


def register(name: str, fn, params: list[inspect.Parameter], doc: str) -> None:
    """Register ``fn(**options)`` as a typer command whose options are ``params``."""
    fn.__signature__ = inspect.Signature(params)
    fn.__annotations__ = {p.name: p.annotation for p in params}
    fn.__doc__ = doc
    app.command(name)(fn)


#: the options of a command that writes a run folder (compress, transfer), beside the config's
RUN_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, default, annotation in (
        ("preset", None, Annotated[str | None, typer.Option("--preset", help="A TOML preset (budgets/*.toml); flags override it.", rich_help_panel=PANELS[None])]),
        ("out", None, Annotated[str | None, typer.Option("--out", help="Run folder (default exports/<model>-<budget>/).", rich_help_panel=PANELS[None])]),
        ("resume", False, Annotated[bool, typer.Option("--resume", help="Continue the run in --out (or the default folder).", rich_help_panel=PANELS[None])]),
        ("force", False, Annotated[bool, typer.Option("--force", help="Replace an existing run folder.", rich_help_panel=PANELS[None])]),
        ("quiet", False, Annotated[bool, typer.Option("--quiet", help="No progress bar or log lines (for scripts).", rich_help_panel=PANELS[None])]),
    )
]  # fmt: skip
#: the model argument of a run, optional because a preset may name it
RUN_MODEL_PARAM = inspect.Parameter(
    "model",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[
        str | None, typer.Argument(help="Zoo name or path/to/file.py:build (may come from --preset).")
    ],
)
