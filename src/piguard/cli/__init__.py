"""The ``piguard`` command. Each verb lives in its own module in this package and exposes
``register(app)``; this module only discovers them, so adding a verb never touches a shared file.

A verb's module is imported only when that verb runs: ``piguard --help`` lists the verbs from their
modules' docstrings, and ``piguard scan`` never imports the ledger's SQLAlchemy or the crawler's Scrapy.
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import sys
from functools import cache
from importlib import util
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from piguard import __version__

# Verbs whose module has another name: ``piguard.cli.app`` would hide the package's ``app`` (the Typer root).
_MODULE_OF = {"app": "app_audit"}
_VERB_OF = {m: v for v, m in _MODULE_OF.items()}


@cache
def _verbs() -> tuple[str, ...]:
    names = (m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return tuple(sorted(_VERB_OF.get(n, n) for n in names))


@cache
def _summary(verb: str) -> str:
    """The first line of a verb module's docstring, without its ``piguard VERB ...``: lead."""
    spec = util.find_spec(f"{__name__}.{_MODULE_OF.get(verb, verb)}")
    try:
        source = open(spec.origin, encoding="utf-8").read() if spec and spec.origin else ""  # noqa: SIM115
        doc = ast.get_docstring(ast.parse(source)) or ""
    except (OSError, SyntaxError, ValueError):
        doc = ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    if first.startswith("``") and "``:" in first:
        first = first.split("``:", 1)[1].strip()
    return first[:1].upper() + first[1:]


class _LazyVerbs(TyperGroup):
    """Verbs found by module name; a module is imported when its verb is resolved, not when help lists it."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_verbs()))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in _verbs():
            return cmd
        if self._listing:
            return TyperCommand(cmd_name, help=_summary(cmd_name), short_help=_summary(cmd_name))
        return self._load(cmd_name)

    def _load(self, verb: str) -> Any:
        module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(verb, verb)}")
        register = getattr(module, "register", None)
        if register is None:
            return None
        # A callback makes Typer build a group holding exactly what the verb registered (with none, a lone
        # command or group would be flattened into the app itself).
        sub = typer.Typer(add_completion=False, callback=lambda: None, rich_markup_mode=None)  # as the app
        register(sub)
        group = typer.main.get_command(sub)
        cmd = getattr(group, "commands", {}).get(verb)
        if cmd is not None:
            self.add_command(cmd, verb)
        return cmd

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="piguard",
    help="Know, govern and prove the personal information you hold.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_LazyVerbs,
    # Plain help text: with Rich markup, "pip install 'piguard[adapt]'" printed as "pip install 'piguard'".
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"piguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """piguard: discover, record, decide, de-identify, crawl, prove."""


def _load_verbs() -> None:
    """Register every verb now (for callers that inspect ``app``; the command line loads them lazily)."""
    for verb in _verbs():
        module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(verb, verb)}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # Last guard: a one-line message, never a traceback (PIGUARD_DEBUG=1 shows it for developers).
        if os.environ.get("PIGUARD_DEBUG"):
            raise
        # The message itself is withheld: it may quote input data.
        typer.echo(
            f"piguard: internal error ({type(exc).__name__}); rerun with PIGUARD_DEBUG=1 for details",
            err=True,
        )
        sys.exit(2)
