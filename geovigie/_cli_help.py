"""Command-line conventions shared by every `geovigie` command, as rio and stac-client users expect them.

`-h` as well as `--help`; help that names values by kind (PATH, TEXT, INTEGER, NUMBER) and shows nothing for flags
(no `<bool>` / `<str>`); plain click-style help and errors off a terminal (no boxes, no colour codes).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import typer
from typer._click.exceptions import ClickException, UsageError  # typer >= 0.29 carries its own click
from typer.core import TyperGroup

HELP_OPTION_NAMES = ["-h", "--help"]
CONTEXT_SETTINGS = {"help_option_names": HELP_OPTION_NAMES}
_METAVARS = {"str": "TEXT", "Path": "PATH", "path": "PATH", "int": "INTEGER", "integer": "INTEGER",
             "float": "NUMBER", "text": "TEXT", "datetime": "DATE"}


def _kind(param: Any) -> str:
    """The value type of a parameter, across typer versions (typer's own descriptor, else click's type)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is not None:
        return str(getattr(annotation, "__name__", annotation))
    return str(getattr(getattr(param, "type", None), "name", "text"))


def _is_flag(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False) or getattr(param, "count", False))


def tidy_params(params: Any) -> None:
    """Give every parameter a conventional metavar (flags none; arguments their name), unless it names its own."""
    for param in params:
        if getattr(param, "param_type_name", "") == "argument":
            if param.metavar is None:
                param.metavar = param.name.upper()
            if hasattr(param, "display_type_rich"):  # typer >= 0.20 adds `<path>` beside the name: the name says it
                param.display_type_rich = lambda ctx: None
            param.get_usage_pieces = functools.partial(_usage, param)  # INPUT, [BUNDLE] (typer writes {input})
        elif _is_flag(param):
            param.metavar = ""
        elif param.metavar is None:
            kind = _kind(param)
            param.metavar = _METAVARS.get(kind, _METAVARS.get(kind.lower(), "TEXT"))
            if getattr(param, "multiple", False):
                param.metavar += " (repeatable)"


def _usage(param: Any, ctx: Any = None) -> list[str]:
    name = str(param.metavar) + ("..." if param.nargs != 1 else "")
    return [name if param.required else f"[{name}]"]


def _walk(command: Any) -> Any:
    yield command
    for child in getattr(command, "commands", {}).values():
        yield from _walk(child)


def _plain(stream: Any) -> bool:
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def _with_tidy_help(command: Any) -> None:
    if getattr(command, "_geovigie_help", False):
        return
    original = command.format_help

    def format_help(ctx: Any, formatter: Any) -> None:
        tidy_params(command.get_params(ctx))  # with the help option, made on first use
        if _plain(sys.stdout):
            command.rich_markup_mode = None
        original(ctx, formatter)

    command.format_help = format_help
    command._geovigie_help = True


class ConventionalGroup(TyperGroup):
    """The top `geovigie` group: applies the conventions above to every command before running."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        for command in _walk(self):
            tidy_params(command.params)  # usage lines of errors too
            _with_tidy_help(command)
            if _plain(sys.stderr):
                command.rich_markup_mode = None
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except UsageError as error:  # one `error:` line naming the option, as for any other bad input
            if type(error).__name__ == "NoArgsIsHelpError":  # `geovigie` alone: its help, as click gives it
                typer.echo(error.format_message(), err=True)
                sys.exit(error.exit_code)
            hint = f" (see `{error.ctx.command_path} -h`)" if error.ctx is not None else ""
            typer.echo(f"error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except ClickException as error:
            typer.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def version_callback(value: bool) -> None:
    """`--version` / `-V`: print `geovigie X.Y.Z` and exit 0."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("geovigie")
        except PackageNotFoundError:  # a source tree that is not installed
            found = "unknown"
        typer.echo(f"geovigie {found}")
        raise typer.Exit(0)


def shipped_names(package: str, folder: str, suffix: str = "") -> list[str]:
    """Names of what `package` ships in `folder` (files ending in `suffix`, else sub-folders), without importing it:
    the choices help lists (ZAN mappings, bundles, training configs)."""
    from importlib.util import find_spec
    from pathlib import Path

    try:
        spec = find_spec(package)
    except ModuleNotFoundError:
        return []
    roots = list(spec.submodule_search_locations or []) if spec else []
    names: set[str] = set()
    for root in roots:
        base = Path(root) / folder
        for path in base.iterdir() if base.is_dir() else ():
            if suffix and path.is_file() and path.name.endswith(suffix):
                names.add(path.name[: -len(suffix)])
            elif not suffix and path.is_dir() and not path.name.startswith((".", "_")):
                names.add(path.name)
    return sorted(names)
