"""A model is validated before anything is claimed for it: bad parameters end in exit 2 with one line naming
the parameter, no output table and no report."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from piguard.cli import app
from piguard.deid import DeidConfig, DeidError, Models, deidentify, read_table

runner = CliRunner()
TABLE = "sex,age,zip\nm,31,310001\nf,32,310002\nm,33,310003\nf,34,310004\nm,35,310005\nf,36,310006\n"


def run(*args: object) -> tuple[int, str, str]:
    res = runner.invoke(app, ["deid", *map(str, args)])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def table(tmp_path: Path) -> Path:
    p = tmp_path / "t.csv"
    p.write_text(TABLE, encoding="utf-8")
    return p


def _refused(tmp_path: Path, args: list[object], expect: str) -> None:
    out, rep = tmp_path / "out.csv", tmp_path / "r.json"
    code, _, stderr = run(*args, "--out", out, "--report", rep)
    assert code == 2, stderr
    assert expect in stderr and "Traceback" not in stderr
    assert not out.exists() and not rep.exists()


def test_empty_quasi_list_is_refused_not_claimed(tmp_path: Path, table: Path) -> None:
    # issue 30: `--quasi ,` wrote the table unchanged and reported k=5 with nothing at risk.
    _refused(tmp_path, [table, "--quasi", ",", "--k", 5], "--quasi names no column")
    _refused(tmp_path, [table, "--quasi", " , ,", "--k", 5], "--quasi names no column")


def test_k_without_quasi_identifiers_is_refused(tmp_path: Path, table: Path) -> None:
    _refused(tmp_path, [table, "--k", 5], "privacy models need quasi-identifiers")


@pytest.mark.parametrize(
    ("models", "expect"),
    [
        ("k: true", "k must be a whole number, got True"),
        ("k: 2.5", "k must be a whole number, got 2.5"),
        ("k: '5'", "k must be a whole number, got a str"),
        ("k: 0", "k must be at least 1, got 0"),
        ("k: 2\n  suppression: 1.5", "suppression must be in [0, 1], got 1.5"),
        ("k: 2\n  suppression: true", "suppression must be a number, got True"),
        ("k: 2\n  l_diversity: [{column: zip, l: 1.5}]", "l must be a whole number, got 1.5"),
        ("k: 2\n  t_closeness: [{column: zip, t: 2}]", "t must be in [0, 1], got 2"),
        ("k: 2\n  l_diversity: {column: zip}", "models.l_diversity must be a list"),
    ],
)
def test_bad_model_parameters_in_config(tmp_path: Path, table: Path, models: str, expect: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"quasi: [age]\nhierarchies: {{age: {{auto: intervals}}}}\nmodels:\n  {models}\n")
    _refused(tmp_path, [table, "--config", cfg], expect)


@pytest.mark.parametrize(
    ("risk", "expect"),
    [
        ("population: -5", "population must be at least 1, got -5"),
        ("population: 1.0e+30", "population must be a whole number"),
        ("threshold: 0", "threshold must be in"),
    ],
)
def test_bad_risk_parameters_in_config(tmp_path: Path, table: Path, risk: str, expect: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"quasi: [age]\nhierarchies: {{age: {{auto: intervals}}}}\nmodels: {{k: 2}}\nrisk: {{{risk}}}\n"
    )
    _refused(tmp_path, [table, "--config", cfg], expect)


def test_negative_population_flag(tmp_path: Path, table: Path) -> None:
    _refused(tmp_path, [table, "--quasi", "age", "--k", 2, "--population", -5], "population must be")


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, table: Path) -> None:
    bomb = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(bomb)
    _refused(tmp_path, [table, "--config", cfg], "aliases")


def test_library_refuses_boolean_and_fractional_k(tmp_path: Path, table: Path) -> None:
    df, _ = read_table(table)
    for bad in (True, 2.5, -1):
        cfg = DeidConfig(quasi=["age"], hierarchies={"age": {"auto": "intervals"}}, models=Models(k=bad))  # type: ignore[arg-type]
        with pytest.raises(DeidError, match="k must be a whole number"):
            deidentify(df, cfg)


def test_fifo_input_is_refused_not_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    _refused(tmp_path, [fifo, "--quasi", "age", "--k", 2], "not a regular file")


def test_parser_errors_do_not_echo_the_offending_row(tmp_path: Path) -> None:
    # polars quotes the row it cannot parse; the message must not carry its phone number or ID.
    src = tmp_path / "bad.csv"
    src.write_text('a,b\n"13812345678,110101199003071233\n', encoding="utf-8")
    _refused(tmp_path, [src, "--quasi", "a", "--k", 1], "malformed table")
    code, _, stderr = run(src, "--out", tmp_path / "o.csv", "--quasi", "a", "--k", 1)
    assert code == 2
    assert "13812345678" not in stderr and "110101199003071233" not in stderr
