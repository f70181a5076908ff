"""A directory holding a Parquet dataset beside logs and a SQLite file: every part of it is scanned."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from piguard.cli import app


def test_logs_and_databases_beside_a_parquet_dataset_are_scanned(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    pl.DataFrame({"手机号": ["13812345678", "13912345678"], "n": [1, 2]}).write_parquet(
        tmp_path / "ds" / "p0.parquet"
    )
    (tmp_path / "app.log").write_text("user=张伟 phone=13700001111 msg=登录成功\n", encoding="utf-8")
    db = sqlite3.connect(tmp_path / "crm.db")
    db.execute("CREATE TABLE t (mobile TEXT)")
    db.execute("INSERT INTO t VALUES ('13600001111')")
    db.commit()
    db.close()
    res = CliRunner().invoke(app, ["scan", str(tmp_path), "--format", "json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    mapped = {(Path(s["source"]).name, s["column"]) for s in report["sources"]}
    assert mapped == {("ds", "手机号"), ("crm.db", "mobile")}
    found = {(Path(f["path"]).name, f["entity"]) for f in report["findings"]}
    assert {("app.log", "PHONE_NUMBER"), ("app.log", "PERSON")} <= found
