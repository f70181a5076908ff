"""`piguard rights` on a SQLite ledger: staff tokens printed once, the queue, a decision, receipts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rights_env import KEY, PHONE, Env
from typer.testing import CliRunner

from piguard.cli import app


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_staff_queue_decide_and_receipt(
    env: Env, ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIGUARD_LEDGER_KEY", KEY.hex())
    run = CliRunner().invoke
    res = run(app, ["rights", "staff", "add", "agent1", "--role", "agent", "--ledger", ledger_url])
    assert res.exit_code == 0, res.output
    token = res.output.strip()
    assert len(token) >= 40 and env.service.staff_for(token).role == "agent"
    res = run(app, ["rights", "staff", "add", "agent1", "--role", "agent", "--ledger", ledger_url])
    assert res.exit_code == 2 and "already exists" in res.output
    res = run(app, ["rights", "staff", "add", "x", "--role", "root", "--ledger", ledger_url])
    assert res.exit_code == 2 and "role must be one of agent, admin, service" in res.output
    res = run(app, ["rights", "staff", "list", "--ledger", ledger_url])
    assert json.loads(res.output) == {"name": "agent1", "role": "agent", "password": False, "disabled": False}
    assert token not in res.output

    rid, _ = env.submit_verified("deletion")
    res = run(app, ["rights", "list", "--open", "--ledger", ledger_url])
    (row,) = [json.loads(line) for line in res.output.splitlines()]
    assert row["id"] == rid and row["working_days_left"] == 15
    res = run(
        app,
        [
            "rights",
            "decide",
            rid,
            "approve",
            "--as",
            "agent1",
            "--ledger",
            ledger_url,
            "--stores",
            str(env.stores_path),
            "--signing-key",
            str(tmp_path / "controller.key"),
        ],
    )
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["status"] == "completed"
    (tmp_path / "req.json").write_text(json.dumps(shown), encoding="utf-8")
    pub = str(tmp_path / "controller.pub")
    res = run(app, ["rights", "verify-receipt", str(tmp_path / "req.json"), "--key", pub])
    assert res.exit_code == 0 and res.output.startswith(f"ok: receipt for {rid}")
    shown["outcome"]["receipt"]["stores"][0]["rows_affected"] = 0
    (tmp_path / "forged.json").write_text(json.dumps(shown), encoding="utf-8")
    res = run(app, ["rights", "verify-receipt", str(tmp_path / "forged.json"), "--key", pub])
    assert res.exit_code == 1 and "INVALID" in res.output
    (tmp_path / "junk.json").write_text("{", encoding="utf-8")
    res = run(app, ["rights", "verify-receipt", str(tmp_path / "junk.json"), "--key", pub])
    assert res.exit_code == 2 and "cannot be read as JSON" in res.output
    assert PHONE not in res.output

    res = run(app, ["rights", "reasons", "--type", "deletion"])
    codes = [json.loads(line)["code"] for line in res.output.splitlines()]
    assert "retention_cybersecurity_logs" in codes and "access_exception" not in codes
    res = run(app, ["rights", "show", "r_missing", "--ledger", ledger_url])
    assert res.exit_code == 2 and "not found" in res.output


def test_serve_refuses_bad_options_before_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIGUARD_LEDGER_KEY", KEY.hex())
    ledger = f"sqlite:///{tmp_path / 'l.db'}"
    run = CliRunner().invoke
    res = run(app, ["serve", "--ledger", ledger, "--stores", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "--stores: stores file" in res.output and "does not exist" in res.output
    res = run(app, ["serve", "--ledger", ledger, "--outbox", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "outbox directory" in res.output
    res = run(app, ["serve", "--ledger", ledger, "--smtp", "http://mail"])
    assert res.exit_code == 2 and "--smtp must be" in res.output
    (tmp_path / "k.key").write_text("x")
    res = run(app, ["serve", "--ledger", ledger, "--signing-key", str(tmp_path / "k.key")])
    assert res.exit_code == 2 and "--signing-key" in res.output
