"""The command line as a new user meets it: help text intact, optional features naming their extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from piguard._extras import MissingExtra, require

PIGUARD = str(Path(sys.executable).parent / "piguard")


def test_help_keeps_bracketed_text() -> None:
    # Rich markup used to swallow "[adapt]": the install hint printed as pip install 'piguard'.
    out = subprocess.run([PIGUARD, "model", "train", "--help"], capture_output=True, text=True, check=True)
    assert "piguard[adapt]" in out.stdout


def test_missing_extra_names_the_extra_to_install() -> None:
    with pytest.raises(MissingExtra, match=r"pip install 'piguard\[crawl\]'"):
        require("surely_not_installed_module_xyz", "crawl", "piguard crawl")
    require("json", "crawl", "piguard crawl")  # an importable module passes


def test_every_listed_verb_resolves() -> None:
    # Verbs are listed from module names and loaded on use: each one listed must load and show its help.
    from typer.testing import CliRunner

    from piguard.cli import _verbs, app

    runner = CliRunner()
    for verb in _verbs():
        res = runner.invoke(app, [verb, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output, (verb, res.output[-300:])


def test_every_subcommand_says_what_it_does() -> None:
    # `piguard rights --help` listed `show` with a blank summary: a new user had nothing to go on.
    import click
    import typer

    from piguard.cli import _load_verbs, app

    _load_verbs()
    root = typer.main.get_command(app)

    # Options whose name says it all; any other must say what it takes (`rights list --status` did not).
    plain = {"--help", "--host", "--port", "--epochs", "--batch", "--lr", "--l2", "--momentum", "--seed"}

    def walk(cmd: click.Command, path: str) -> list[str]:
        missing = [] if (cmd.help or cmd.short_help or "").strip() else [path]
        for p in cmd.params:
            silent = not (getattr(p, "help", "") or "").strip()
            if p.param_type_name == "option" and silent and not set(p.opts) & plain:
                missing.append(f"{path} {p.opts[0]}")
        for name, sub in getattr(cmd, "commands", {}).items():
            missing += walk(sub, f"{path} {name}")
        return missing

    assert walk(root, "piguard") == []


PSI_QUERY = "joint psi query http://127.0.0.1:9 --ids a.csv --column p --key k --trust t --out o.csv"
TRAIN_RUN = (
    "joint train run http://127.0.0.1:9 --ids a.csv --column c --label y --positive 1 --key k --trust t "
    "--model-out m"
)


@pytest.mark.parametrize(
    ("missing", "command", "extra"),
    [
        ("nacl", PSI_QUERY, "joint"),
        ("phe", TRAIN_RUN, "joint"),
        ("chinese_calendar", "rights due 2026-09-30", "web"),
        ("argon2", "rights staff add bob --role agent", "web"),
    ],
)
def test_a_verb_whose_extra_is_missing_names_it(
    missing: str, command: str, extra: str, tmp_path: Path
) -> None:
    # These ended in "internal error (ModuleNotFoundError)": the README promises the extra is named.
    code = (
        f"import sys; sys.modules[{missing!r}] = None; sys.argv = ['piguard', *{command.split()!r}]; "
        "from piguard.cli import main; main()"
    )
    cmd = [sys.executable, "-c", code]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stderr
    assert f"pip install 'piguard[{extra}]'" in res.stderr and missing in res.stderr
    assert "internal error" not in res.stderr
