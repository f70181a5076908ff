"""The ``piguard`` command. Each verb lives in its own module in this package and exposes
``register(app)``; this module only discovers them, so adding a verb never touches a shared file."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer

from piguard import __version__

app = typer.Typer(
    name="piguard",
    help="Know, govern and prove the personal information you hold.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_load_verbs()


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
