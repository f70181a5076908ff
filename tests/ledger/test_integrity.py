"""The ledger proves what it holds: each tampering issue 30 lists -- and its neighbours -- made with database
rights (SQL that bypasses piguard, the audit triggers removed first) must fail ``verify`` and make ``check``
refuse the ledger, on SQLite and on PostgreSQL. Forging the chain needs the ledger key; removing entries
from its end is caught by a signed checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from piguard.cli import app
from piguard.keys import generate, load_trust
from piguard.ledger import Ledger, LedgerError, entry_hash, load_key, read_checkpoint

from .conftest import subject as S

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flows"
GENESIS = "0" * 64


def _populated(url: str) -> Ledger:
    """A small ledger touching every replayed table; its last entry withdraws consent c2."""
    led = Ledger.open(url)
    led.declare_purpose(
        "fraud_alerts", zh="欺诈预警", en="fraud alerts", categories=["PERSON", "CREDIT_RECORD"]
    )
    led.record_provenance(
        "ds-up",
        dataset="raw.csv",
        method="collected_from_subject",
        legal_basis="consent",
        source_identity="app",
    )
    led.record_provenance(
        "ds-1", dataset="scores", method="derived", legal_basis="consent", source_identity="model",
        upstream=["ds-up"], categories=["financial"],
    )  # fmt: skip
    led.record_activity(
        "act-1", name="delivery", activity="provide", purpose_id="data_supply", categories=["PERSON"],
        legal_basis="consent", recipient="某银行",
    )  # fmt: skip
    for cid, who in (("c1", "alice"), ("c2", "bob"), ("c3", "carol")):
        led.record_consent(
            subject_id=S(who), kind="separate", purposes=["data_supply"],
            categories=["PERSON", "CREDIT_RECORD"], recipients=["某银行"], consent_id=cid,
        )  # fmt: skip
    led.withdraw_consent("c2")
    assert led.verify().ok
    return led


def _tamper(led: Ledger, *statements: str, **params: Any) -> None:
    """Run SQL as someone holding the database would: with the audit log's append-only triggers removed."""
    with led.engine.begin() as conn:
        if led.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS ledger_audit_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS ledger_audit_no_delete"))
        else:
            conn.execute(text("ALTER TABLE ledger_audit DISABLE TRIGGER ledger_audit_append_only"))
        for sql in statements:
            conn.execute(text(sql), params)


ROLL_BACK_HEAD = (
    "UPDATE ledger_chain_head SET seq = seq - 1, hash = "
    "(SELECT prev_hash FROM ledger_audit WHERE seq = (SELECT MAX(seq) FROM ledger_audit))"
)
DROP_LAST = "DELETE FROM ledger_audit WHERE seq = (SELECT m FROM (SELECT MAX(seq) AS m FROM ledger_audit) t)"

# name: (SQL, words the first problem must contain)
TAMPERINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "withdrawal undone": (
        ("UPDATE ledger_consents SET withdrawn_at = NULL WHERE id = 'c2'",),
        "consent 'c2' was withdrawn in entry 8 but the table shows it active",
    ),
    "withdrawal invented": (
        ("UPDATE ledger_consents SET withdrawn_at = given_at WHERE id = 'c1'",),
        "consent 'c1' is marked withdrawn but no audit entry withdraws it",
    ),
    "withdrawal time moved": (
        ("UPDATE ledger_consents SET withdrawn_at = given_at WHERE id = 'c2'",),
        "consent 'c2': withdrawn_at differs from what entry 8 recorded",
    ),
    "purposes widened": (
        ("""UPDATE ledger_consents SET purposes = '["data_supply", "marketing"]' WHERE id = 'c1'""",),
        "consent 'c1' differs from what entry 5 recorded (purposes)",
    ),
    "recipient and kind changed": (
        ("UPDATE ledger_consents SET recipients = '[\"某网贷平台\"]', kind = 'guardian' WHERE id = 'c3'",),
        "consent 'c3' differs from what entry 7 recorded (kind, recipients)",
    ),
    "consent inserted without an entry": (
        (
            "INSERT INTO ledger_consents (id, subject_id, kind, purposes, recipients, categories, given_at) "
            f"VALUES ('c9', '{S('alice')}', 'separate', '[\"data_supply\"]', '[]', '[\"PERSON\"]', "
            "CURRENT_TIMESTAMP)",
        ),
        "consent 'c9' is in the table but no audit entry records it",
    ),
    "subject inserted": (
        (f"INSERT INTO ledger_subjects (id, created_at) VALUES ('{S('mallory')}', CURRENT_TIMESTAMP)",),
        f"subject '{S('mallory')}' is in the table but no consent entry names it",
    ),
    "consent deleted": (
        ("DELETE FROM ledger_consents WHERE id = 'c3'",),
        "consent 'c3' recorded in entry 7 is missing",
    ),
    "provenance basis changed": (
        ("UPDATE ledger_provenance SET legal_basis = 'public_disclosed' WHERE id = 'ds-1'",),
        "provenance record 'ds-1' differs from what entry 3 recorded (legal_basis)",
    ),
    "purpose widened": (
        ("""UPDATE ledger_purposes SET categories = '["PERSON", "CN_RESIDENT_ID"]'""",),
        "purpose 'fraud_alerts' differs from what entry 1 recorded (categories)",
    ),
    "activity deleted": (
        ("DELETE FROM ledger_activities",),
        "activity 'act-1' recorded in entry 4 is missing",
    ),
    "audit log wiped, head reset": (
        ("DELETE FROM ledger_audit", f"UPDATE ledger_chain_head SET seq = 0, hash = '{GENESIS}'"),
        "is in the table but no audit entry records it",
    ),
    "last entry dropped, head rolled back": ((ROLL_BACK_HEAD, DROP_LAST), "no audit entry withdraws it"),
    "last entry dropped, head kept": ((DROP_LAST,), "chain head says entry 8 but the log ends at 7"),
    "entry altered": (
        ("UPDATE ledger_audit SET actor = 'someone else' WHERE seq = 5",),
        "entry 5 was altered",
    ),
    "entry removed from the middle": (("DELETE FROM ledger_audit WHERE seq = 3",), "entry 3 is missing"),
    "chain head row deleted": (("DELETE FROM ledger_chain_head",), "the chain head row is missing"),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_each_tampering_fails_verify(name: str, ledger_url: str, key_env: bytes) -> None:
    statements, words = TAMPERINGS[name]
    led = _populated(ledger_url)
    _tamper(led, *statements)
    res = led.verify()
    assert not res.ok and res.tampered, res
    assert words in (res.problem or ""), res.problems
    led.close()


def test_check_refuses_a_ledger_whose_withdrawal_was_undone(ledger_url: str, key_env: bytes) -> None:
    """Issue 30's first case end to end: the flow a withdrawal denied must not become allowed."""
    led = _populated(ledger_url)
    flows = Path(os.environ.get("TMPDIR", "/tmp")) / f"flows-{os.getpid()}-{id(led)}.yaml"
    flows.write_text(
        "controller: 某数据公司\nflows:\n  - id: deliver\n    activity: provide\n    data: [PERSON]\n"
        "    purpose: data_supply\n    legal_basis: consent\n    consent: {ref: c2}\n"
        "    recipient: {kind: third_party, name: 某银行}\n"
        "    impact_assessment: true\n    disclosed: true\n",
        "utf-8",
    )
    try:
        res = runner.invoke(app, ["check", str(flows), "--ledger", ledger_url, "-f", "json"])
        assert res.exit_code == 1 and json.loads(res.stdout)["flows"][0]["verdict"] == "deny"
        _tamper(led, "UPDATE ledger_consents SET withdrawn_at = NULL WHERE id = 'c2'")
        res = runner.invoke(app, ["check", str(flows), "--ledger", ledger_url, "-f", "json"])
        assert res.exit_code == 2 and res.stdout == ""
        assert "fails verification, refusing to decide on it" in res.stderr
        assert "consent 'c2' was withdrawn in entry 8" in res.stderr and "Traceback" not in res.stderr
        res = runner.invoke(app, ["ledger", "verify", "--ledger", ledger_url])
        assert res.exit_code == 1 and res.stderr.startswith("TAMPERED: ledger_consents: consent 'c2'")
    finally:
        flows.unlink()
        led.close()


def _rewrite_chain(led: Ledger, seq: int, payload_edit: tuple[str, str], *, strip_macs: bool = False) -> None:
    """Rewrite one entry's payload and recompute every later hash and the head with the public recipe --
    all an attacker without the key can do. The table row is changed to match the forged entry."""
    with led.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM ledger_audit ORDER BY seq"))]
    prev = GENESIS
    stmts, params = [], {}
    for r in rows:
        if r["seq"] == seq:
            r["payload"] = r["payload"].replace(*payload_edit)
        h = entry_hash(
            prev, r["seq"], r["at"], r["actor"], r["action"], r["object_type"], r["object_id"], r["payload"]
        )
        n = r["seq"]
        mac = "NULL" if strip_macs else "mac"
        stmts.append(
            f"UPDATE ledger_audit SET payload = :p{n}, prev_hash = :v{n}, hash = :h{n}, mac = {mac} "
            f"WHERE seq = {n}"
        )
        params.update({f"p{n}": r["payload"], f"v{n}": prev, f"h{n}": h})
        prev = h
    stmts.append(f"UPDATE ledger_chain_head SET seq = {rows[-1]['seq']}, hash = '{prev}'")
    stmts.append("""UPDATE ledger_consents SET purposes = '["data_supply", "marketing"]' WHERE id = 'c1'""")
    _tamper(led, *stmts, **params)


def test_recomputed_chain_fails_without_the_key(ledger_url: str, key_env: bytes) -> None:
    led = _populated(ledger_url)
    _rewrite_chain(led, 5, ('"data_supply"', '"data_supply","marketing"'))
    res = led.verify()
    assert res.tampered and res.problem == (
        "entry 5 fails authentication (altered, or written without the ledger key)"
    ), res
    led.close()


def test_stripped_macs_are_not_authenticated(ledger_url: str, key_env: bytes) -> None:
    led = _populated(ledger_url)
    _rewrite_chain(led, 5, ('"data_supply"', '"data_supply","marketing"'), strip_macs=True)
    res = led.verify()
    assert not res.ok and res.unauthenticated and "entries 1..8 carry no MAC" in (res.problem or "")
    with pytest.raises(LedgerError, match="no key authenticates"):
        led.record_consent(
            subject_id=S("x"), kind="separate", purposes=["data_supply"], categories=["PERSON"]
        )
    res = runner.invoke(app, ["ledger", "verify", "--ledger", ledger_url])
    assert res.exit_code == 1 and "NOT AUTHENTICATED" in res.stderr
    led.close()


def test_a_log_written_with_another_key_fails(ledger_url: str, key_env: bytes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    led = _populated(ledger_url)
    led.close()
    monkeypatch.setenv("PIGUARD_LEDGER_KEY", "ff" * 32)
    led = Ledger.open(ledger_url)
    res = led.verify()
    assert res.tampered and "entry 1 is authenticated with another ledger key" in (res.problem or "")
    with pytest.raises(LedgerError, match="authenticated with another ledger key"):
        led.withdraw_consent("c1")  # nothing is appended under the wrong key
    led.close()


def test_verify_names_a_dropped_table_and_never_creates(
    ledger_url: str, key_env: bytes, tmp_path: Path
) -> None:
    led = _populated(ledger_url)
    _tamper(led, "DROP TABLE ledger_audit")
    led.close()
    res = runner.invoke(app, ["ledger", "verify", "--ledger", ledger_url])
    assert res.exit_code == 1 and "TAMPERED: table ledger_audit is missing" in res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr

    (tmp_path / "typo").mkdir()
    typo = tmp_path / "typo" / "typo.db"
    for args in (["ledger", "verify"], ["ledger", "status"], ["ledger", "audit"], ["consent", "show", "c1"]):
        res = runner.invoke(app, [*args, "--ledger", str(typo)])
        assert res.exit_code == 2 and "does not exist" in res.stderr, (args, res.stderr)
    res = runner.invoke(app, ["check", str(EXAMPLES / "lending_app_lawful.yaml"), "--ledger", str(typo)])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    assert list(typo.parent.iterdir()) == []  # no ledger, no key file, no WAL


def test_chain_head_row_deleted_is_tampered_on_the_command_line(ledger_url: str, key_env: bytes) -> None:
    led = _populated(ledger_url)
    _tamper(led, "DELETE FROM ledger_chain_head")
    res = runner.invoke(app, ["ledger", "verify", "--ledger", ledger_url])
    assert res.exit_code == 1 and "TAMPERED: the chain head row is missing" in res.stderr
    with pytest.raises(LedgerError, match="the chain head row is missing"):
        led.withdraw_consent("c1")
    led.close()


# ---- checkpoints ------------------------------------------------------------------------------------------
@pytest.fixture
def controller(tmp_path: Path) -> Path:
    generate(tmp_path / "controller", owner="某数据公司")
    return tmp_path / "controller"


def _checkpoint(ledger_url: str, controller: Path, out: Path) -> None:
    res = runner.invoke(
        app,
        [
            "ledger",
            "checkpoint",
            "--signing-key",
            f"{controller}.key",
            "-o",
            str(out),
            "--ledger",
            ledger_url,
        ],
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("checkpoint at entry 8 signed by SHA256:")


def test_checkpoint_catches_a_consistent_rollback(
    ledger_url: str, key_env: bytes, controller: Path, tmp_path: Path
) -> None:
    led = _populated(ledger_url)
    cp = tmp_path / "cp.json"
    _checkpoint(ledger_url, controller, cp)
    # The withdrawal entry removed, the head rolled back, and the row put back as it was before: every
    # remaining entry still authenticates -- only the checkpoint knows the log was longer.
    _tamper(led, ROLL_BACK_HEAD, DROP_LAST, "UPDATE ledger_consents SET withdrawn_at = NULL WHERE id = 'c2'")
    assert led.verify().ok  # the limit of what an HMAC can show, stated in docs/ledger.md
    res = runner.invoke(
        app,
        ["ledger", "verify", "--checkpoint", str(cp), "--trust", f"{controller}.pub", "--ledger", ledger_url],
    )
    assert res.exit_code == 1
    assert (
        "covers entry 8 but the log ends at 7: entries were removed or the log was rolled back" in res.stderr
    )
    led.close()


def test_checkpoint_catches_a_wiped_ledger(
    ledger_url: str, key_env: bytes, controller: Path, tmp_path: Path
) -> None:
    led = _populated(ledger_url)
    cp = tmp_path / "cp.json"
    _checkpoint(ledger_url, controller, cp)
    tables = ("ledger_audit", "ledger_consents", "ledger_subjects", "ledger_purposes", "ledger_provenance",
              "ledger_activities")  # fmt: skip
    _tamper(
        led,
        *(f"DELETE FROM {t}" for t in tables),
        f"UPDATE ledger_chain_head SET seq = 0, hash = '{GENESIS}'",
    )
    trust = load_trust(f"{controller}.pub")
    res = led.verify([read_checkpoint(cp, trust)])
    assert res.tampered and "the log ends at 0" in (res.problem or "")
    led.close()


def test_checkpoint_lets_a_verifier_without_the_key_check_the_log(
    ledger_url: str, key_env: bytes, controller: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = _populated(ledger_url)
    key = load_key(led.url)
    cp = tmp_path / "cp.json"
    _checkpoint(ledger_url, controller, cp)
    led.withdraw_consent("c3")  # one entry after the checkpoint
    led.close()
    monkeypatch.delenv("PIGUARD_LEDGER_KEY")
    args = [
        "ledger",
        "verify",
        "--checkpoint",
        str(cp),
        "--trust",
        f"{controller}.pub",
        "--ledger",
        ledger_url,
    ]
    res = runner.invoke(app, args)
    # Entries 1..8 are proven by the signature; entry 9 cannot be without the key: exit 2, nothing wrong.
    assert res.exit_code == 2 and "entries 9..9 cannot be authenticated" in res.stderr
    res = runner.invoke(app, ["ledger", "verify", "--ledger", ledger_url])
    assert res.exit_code == 2 and "no ledger key" in res.stderr

    led = Ledger.open(ledger_url, key=key)
    _rewrite_chain(led, 5, ('"data_supply"', '"data_supply","marketing"'))
    led.close()
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "entry 8 differs from checkpoint" in res.stderr


def test_a_forged_or_untrusted_checkpoint_is_refused(
    ledger_url: str, key_env: bytes, controller: Path, tmp_path: Path
) -> None:
    _populated(ledger_url).close()
    cp = tmp_path / "cp.json"
    _checkpoint(ledger_url, controller, cp)
    doc = json.loads(cp.read_text())
    doc["seq"] = 3
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    generate(tmp_path / "other")
    cases = [
        (forged, f"{controller}.pub", "the signature does not verify"),
        (cp, str(tmp_path / "other.pub"), "a key not in the trusted keys"),
        (tmp_path / "nope.json", f"{controller}.pub", "does not exist"),
        (Path(f"{controller}.pub"), f"{controller}.pub", "is not JSON"),
    ]
    for path, trust, words in cases:
        res = runner.invoke(
            app, ["ledger", "verify", "--checkpoint", str(path), "--trust", trust, "--ledger", ledger_url]
        )
        assert res.exit_code == 2 and words in res.stderr, (path, res.stderr)
    res = runner.invoke(app, ["ledger", "verify", "--checkpoint", str(cp), "--ledger", ledger_url])
    assert res.exit_code == 2 and "--checkpoint needs --trust" in res.stderr


def _schema(name: str) -> Any:
    import jsonschema

    path = Path(__file__).resolve().parents[2] / "src" / "piguard" / "schemas" / f"{name}.schema.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text()))


def test_json_outputs_match_their_published_schemas(
    ledger_url: str, key_env: bytes, controller: Path, tmp_path: Path
) -> None:
    led = _populated(ledger_url)
    verify_schema = _schema("ledger-verify")
    res = runner.invoke(app, ["ledger", "verify", "--format", "json", "--ledger", ledger_url])
    out = json.loads(res.stdout)
    verify_schema.validate(out)
    assert res.exit_code == 0 and out["ok"] and out["entries"] == out["authenticated"] == 8
    cp = tmp_path / "cp.json"
    _checkpoint(ledger_url, controller, cp)
    _schema("ledger-checkpoint").validate(json.loads(cp.read_text()))
    _tamper(led, "UPDATE ledger_consents SET withdrawn_at = NULL WHERE id = 'c2'")
    res = runner.invoke(app, ["ledger", "verify", "--format", "json", "--ledger", ledger_url])
    out = json.loads(res.stdout)
    verify_schema.validate(out)
    assert res.exit_code == 1 and out["status"] == "tampered" and "'c2'" in out["problems"][0]
    led.close()
