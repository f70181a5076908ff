"""``piguard consent`` and ``piguard ledger`` verbs on a SQLite ledger file."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from piguard.cli import app
from piguard.ledger import Ledger

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"
RAW = "110101199003074578"


def _run(*args: str, stdin: str | None = None, env: dict | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=stdin, env={"PIGUARD_LEDGER_KEY": "", **(env or {})})


def test_consent_verbs_and_example_delivery(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    res = _run("ledger", "init", "--ledger", db)
    assert res.exit_code == 0, res.stderr
    # The key is created with the ledger, and the user is told where (it must be backed up).
    assert (Path(db + ".key").stat().st_mode & 0o777) == 0o600
    assert f"created ledger key file {db}.key (mode 0600)" in res.stderr
    assert "ledger key: " in res.stdout and "key id " in res.stdout
    res = _run("ledger", "init", "--ledger", db)
    assert res.exit_code == 0 and "created ledger key file" not in res.stderr  # said once, when it happens
    res = _run(
        "ledger",
        "provenance",
        "dataset-credit-2026q3",
        "--dataset",
        "credit.parquet",
        "--method",
        "collected_from_subject",
        "--legal-basis",
        "consent",
        "--source",
        "app",
        "--ledger",
        db,
    )
    assert res.exit_code == 0, res.stderr
    common = [
        "--purpose",
        "data_supply",
        "--data",
        "PERSON",
        "--data",
        "CN_RESIDENT_ID",
        "--data",
        "CREDIT_RECORD",
        "--data",
        "INCOME",
        "--recipient",
        "某商业银行股份有限公司",
        "--ledger",
        db,
    ]
    res = _run(
        "consent",
        "record",
        "--subject-id",
        "-",
        "--kind",
        "separate",
        "--id",
        "consent-bank-001",
        *common,
        stdin=RAW + "\n",
    )
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["consent"] == "consent-bank-001" and out["subject"].startswith("s_") and RAW not in res.stdout
    assert (Path(db + ".key").stat().st_mode & 0o777) == 0o600
    res = _run(
        "consent",
        "record",
        "--subject-id",
        "-",
        "--kind",
        "separate",
        "--id",
        "consent-bank-002",
        *common,
        stdin="110101199003079999\n",
    )
    assert res.exit_code == 0

    res = _run("check", str(EXAMPLES / "data_provider_to_bank.yaml"), "--ledger", db, "-f", "json")
    verdicts = {f["id"]: f["verdict"] for f in json.loads(res.stdout)["flows"]}
    assert verdicts == {
        "deliver-applicant-001": "allow",
        "deliver-applicant-002": "allow",
        "resale-bought-list": "deny",
    }
    assert res.exit_code == 1

    assert _run("consent", "withdraw", "consent-bank-001", "--ledger", db).exit_code == 0
    res = _run("check", str(EXAMPLES / "data_provider_to_bank.yaml"), "--ledger", db, "-f", "json")
    flows = {f["id"]: f for f in json.loads(res.stdout)["flows"]}
    assert flows["deliver-applicant-001"]["verdict"] == "deny"
    assert ("PIPL", "15") in {(r["source"], r["article"]) for r in flows["deliver-applicant-001"]["reasons"]}
    assert flows["deliver-applicant-002"]["verdict"] == "allow"

    res = _run("consent", "show", "--subject-id", "-", "--history", "--ledger", db, stdin=RAW + "\n")
    shown = json.loads(res.stdout)
    assert [c["id"] for c in shown] == ["consent-bank-001"] and shown[0]["withdrawn_at"]
    assert [h["action"] for h in shown[0]["history"]] == ["consent.record", "consent.withdraw"]
    assert RAW not in res.stdout

    res = _run("ledger", "verify", "--ledger", db)
    assert res.exit_code == 0 and res.stdout.startswith("ok: 4 audit entries")
    led = Ledger.open(db)
    with led.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER ledger_audit_no_update"))
        conn.execute(text("UPDATE ledger_audit SET actor = 'mallory' WHERE seq = 2"))
    led.close()
    res = _run("ledger", "verify", "--ledger", db)
    assert res.exit_code == 1 and "entry 2 was altered" in res.stderr


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    res = _run("consent", "withdraw", "nope", "--ledger", db)
    assert res.exit_code == 2 and "does not exist" in res.stderr and not Path(db).exists()
    assert _run("ledger", "init", "--ledger", db).exit_code == 0
    res = _run("consent", "withdraw", "nope", "--ledger", db)
    assert res.exit_code == 2 and res.stderr.strip() == "piguard consent: consent 'nope' is not in the ledger"
    res = _run(
        "consent",
        "record",
        "--subject",
        "s_" + "ab" * 20,
        "--kind",
        "implied",
        "--purpose",
        "payment",
        "--data",
        "PERSON",
        "--ledger",
        db,
    )
    assert res.exit_code == 2 and "valid: none, bundled, explicit, separate, guardian" in res.stderr
    missing = "s_" + "cd" * 20
    res = _run("consent", "show", "--subject", missing, "--ledger", db)
    assert res.exit_code == 2 and f"subject '{missing}' is not in the ledger" in res.stderr
    res = _run("ledger", "status", "--ledger", str(tmp_path / "no" / "l.db"))
    assert res.exit_code == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_consent_record_says_when_it_creates_the_key_file(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    # Looking a subject up never creates a key: without one there is nothing to find.
    res = _run("consent", "show", "--subject-id", "-", "--ledger", db, stdin=RAW + "\n")
    assert res.exit_code == 2 and "does not exist" in res.stderr and not Path(db + ".key").exists()
    args = ["consent", "record", "--subject-id", "-", "--kind", "separate", "--purpose", "data_supply",
            "--data", "PERSON", "--ledger", db]  # fmt: skip
    res = _run(*args, stdin=RAW + "\n")
    assert res.exit_code == 0, res.stderr
    assert res.stderr.strip() == (
        f"piguard consent: created ledger key file {db}.key (mode 0600). Back it up and keep it off the "
        "database host: it pseudonymises subjects and authenticates the audit log"
    )
    assert (Path(db + ".key").stat().st_mode & 0o777) == 0o600
    res = _run(*args, stdin="110101199003079999\n")
    assert res.exit_code == 0 and res.stderr == ""  # said once, when it happened
    res = _run("consent", "show", "--subject-id", "-", "--ledger", db, stdin=RAW + "\n")
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 1 and RAW not in res.stdout


def test_a_write_never_plants_a_new_key_beside_a_ledger_whose_key_went_missing(tmp_path: Path) -> None:
    # A ledger copied without its key file: the write used to create a fresh key (and then refuse with
    # "authenticated with another ledger key"), leaving a wrong key file that misled every later verify.
    db = str(tmp_path / "ledger.db")
    key = Path(db + ".key")
    purpose = ["ledger", "purpose", "fraud_alerts", "--zh", "欺诈预警", "--en", "fraud", "--data", "PERSON"]
    consent = ["consent", "record", "--subject-id", "-", "--kind", "separate", "--purpose", "data_supply"]
    assert _run(*purpose, "--ledger", db).exit_code == 0
    saved = key.read_bytes()
    key.unlink()
    for args, stdin in ((purpose, None), ([*consent, "--data", "PERSON"], RAW), (["ledger", "init"], None)):
        res = _run(*args, "--ledger", db, stdin=stdin)
        assert res.exit_code == 2, (args, res.stdout, res.stderr)
        assert f"its key file {key} is missing: restore it" in res.stderr
        assert "--key-file" in res.stderr and not key.exists()
    key.write_bytes(saved)
    purpose[2] = "fraud_alerts_2"  # with its key back the ledger takes writes again
    assert _run(*purpose, "--ledger", db).exit_code == 0
    assert _run("ledger", "verify", "--ledger", db).exit_code == 0
