"""The ledger on real SQLite and PostgreSQL: consents, pseudonyms, the hash chain, schema versions, and
check resolving consents from it."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text

from piguard.ledger import Ledger, LedgerError, pseudonym
from piguard.rules import Engine, FlowsError, parse_flows

from .conftest import subject as S

RAW_ID = "110101199003074578"


def _flows(consent: dict, purpose: str = "data_supply", recipient: str = "某银行") -> str:
    return yaml.safe_dump(
        {
            "controller": "某数据公司",
            "flows": [
                {
                    "id": "deliver",
                    "activity": "provide",
                    "data": ["PERSON", "CREDIT_RECORD"],
                    "purpose": purpose,
                    "legal_basis": "consent",
                    "consent": consent,
                    "recipient": {"kind": "third_party", "name": recipient},
                    "impact_assessment": True,
                    "disclosed": True,
                }
            ],
        },
        allow_unicode=True,
    )


def _record(led: Ledger, cid: str, subject: str, **kw) -> str:  # type: ignore[no-untyped-def]
    args = {
        "subject_id": subject,
        "kind": "separate",
        "purposes": ["data_supply"],
        "categories": ["PERSON", "CREDIT_RECORD"],
        "recipients": ["某银行"],
        "consent_id": cid,
    }
    args.update(kw)
    return led.record_consent(**args)


def test_consent_times_carry_their_zone_on_every_backend(ledger_url: str, key_env: bytes) -> None:
    # SQLite hands the UTC times back naive; a reader must not get local-looking times from one backend
    # and UTC from the other.
    from datetime import UTC, datetime, timedelta

    led = Ledger.open(ledger_url)
    _record(led, "c1", pseudonym(RAW_ID, key_env))
    led.withdraw_consent("c1")
    c = led.consent("c1")
    assert c is not None
    for field in ("given_at", "withdrawn_at"):
        at = datetime.fromisoformat(c[field])
        assert at.utcoffset() == timedelta(0), c[field]
        assert abs(datetime.now(UTC) - at) < timedelta(minutes=5)


def test_consent_lifecycle_and_check(ledger_url: str, key_env: bytes) -> None:
    led = Ledger.open(ledger_url)
    subject = pseudonym(RAW_ID, key_env)
    assert subject == pseudonym(" 110101-19900307457x ".replace("x", "8"), key_env)  # normalised
    assert subject != pseudonym(RAW_ID, b"another key")
    _record(led, "c1", subject, policy_text=b"policy v3", policy_version="v3", channel="app")
    c = led.consent("c1")
    assert c is not None and c["subject"] == subject and c["withdrawn_at"] is None
    assert c["policy_hash"] and len(c["policy_hash"]) == 64

    engine = Engine(led)
    (d,) = engine.evaluate(parse_flows(_flows({"ref": "c1"}), "f.yaml"))
    assert d.verdict == "allow", d.reasons
    (d,) = engine.evaluate(parse_flows(_flows({"subject": subject}), "f.yaml"))
    assert d.verdict == "allow"
    # Another recipient or purpose is outside what the person agreed to.
    (d,) = engine.evaluate(parse_flows(_flows({"ref": "c1"}, recipient="某网贷平台"), "f.yaml"))
    assert {"PIPL-14-SCOPE", "APP2019-C3.3"} <= {r.rule for r in d.reasons}
    assert any("recipient:某网贷平台" in r.message_en for r in d.reasons)

    led.withdraw_consent("c1")
    (d,) = engine.evaluate(parse_flows(_flows({"ref": "c1"}), "f.yaml"))
    assert d.verdict == "deny" and "PIPL-15-WITHDRAWN" in {r.rule for r in d.reasons}
    with pytest.raises(LedgerError, match="already withdrawn"):
        led.withdraw_consent("c1")
    actions = [e["action"] for e in led.audit_entries("c1")]
    assert actions == ["consent.record", "consent.withdraw"]
    assert led.verify().ok and led.verify().entries == 2

    # A newer consent for the same subject is picked when the flow names the subject.
    _record(led, "c2", subject)
    (d,) = engine.evaluate(parse_flows(_flows({"subject": subject}), "f.yaml"))
    assert d.verdict == "allow"
    led.close()


def test_raw_identifiers_never_stored(ledger_url: str, key_env: bytes) -> None:
    led = Ledger.open(ledger_url)
    subject = pseudonym(RAW_ID, key_env)
    _record(led, "c1", subject)
    with pytest.raises(LedgerError, match="must be a pseudonym"):
        _record(led, "c2", RAW_ID)
    with led.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for t in ("ledger_subjects", "ledger_consents", "ledger_audit")
            for row in conn.execute(text(f"SELECT * FROM {t}"))
        )
    assert RAW_ID not in dump and subject in dump
    led.close()


def test_bad_input_is_refused_and_nothing_half_written(ledger_url: str) -> None:
    led = Ledger.open(ledger_url)
    x = S("x")
    with pytest.raises(LedgerError, match="valid: none, bundled, explicit, separate, guardian"):
        _record(led, "c1", x, kind="implied")
    with pytest.raises(LedgerError, match="unknown purpose"):
        _record(led, "c1", x, purposes=["fun"])
    with pytest.raises(LedgerError, match="unknown entity or class 'SOUL'"):
        _record(led, "c1", x, categories=["SOUL"])
    with pytest.raises(LedgerError, match="consent id must be 1 to 120"):
        _record(led, "c" * 121, x)
    # Only the exact pseudonym form is a subject: a raw ID behind the prefix is refused, never stored.
    for bad in ("s_" + "x" * 100, "s_" + RAW_ID, "s_" + "A" * 40, "s_" + "a" * 39, "s_" + "a" * 40 + "\n"):
        with pytest.raises(LedgerError, match="subject must be a pseudonym"):
            _record(led, "c1", bad)
    _record(led, "c1", x)
    with pytest.raises(LedgerError, match="already exists"):
        _record(led, "c1", x)
    with pytest.raises(LedgerError, match="not in the ledger"):
        led.withdraw_consent("nope")
    with pytest.raises(LedgerError, match=r"consent '1101\*{10}1233' is not in the ledger"):
        led.withdraw_consent("110101199003071233")  # the library's messages are masked too
    with pytest.raises(LedgerError, match="upstream provenance records not in the ledger: up-1"):
        led.record_provenance(
            "ds",
            dataset="d",
            method="received_from_supplier",
            legal_basis="consent",
            source_identity="S",
            upstream=["up-1"],
        )
    with pytest.raises(LedgerError, match="collection method"):
        led.record_provenance("ds", dataset="d", method="bought", legal_basis="consent", source_identity="S")
    counts = led.counts()
    assert counts["consents"] == 1 and counts["audit"] == 1 and counts["provenance"] == 0
    assert led.verify().ok
    led.close()


def test_check_errors_for_missing_references(ledger_url: str) -> None:
    led = Ledger.open(ledger_url)
    engine = Engine(led)
    with pytest.raises(
        FlowsError, match=r"f.yaml:\d+: flow 'deliver': consent 'missing' is not in the ledger"
    ):
        engine.evaluate(parse_flows(_flows({"ref": "missing"}), "f.yaml"))
    nobody = S("nobody")
    with pytest.raises(FlowsError, match=f"subject '{nobody}' is not in the ledger"):
        engine.evaluate(parse_flows(_flows({"subject": nobody}), "f.yaml"))
    with pytest.raises(FlowsError, match=r"consent\.subject: expected a subject pseudonym"):
        parse_flows(_flows({"subject": "s_nobody"}), "f.yaml")
    led.close()


def test_declared_purpose_and_provenance(ledger_url: str) -> None:
    led = Ledger.open(ledger_url)
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
        "ds-1",
        dataset="scores.parquet",
        method="derived",
        legal_basis="consent",
        source_identity="model",
        upstream=["ds-up"],
        categories=["financial"],
    )
    _record(led, "c1", S("p"), purposes=["fraud_alerts"])
    doc = yaml.safe_load(_flows({"ref": "c1"}, purpose="fraud_alerts"))
    doc["flows"][0]["source"] = {"kind": "derived", "provenance": "ds-1"}
    flows = parse_flows(yaml.safe_dump(doc, allow_unicode=True), "f.yaml", led.declared_purposes())
    (d,) = Engine(led).evaluate(flows)
    assert d.verdict == "allow", d.reasons
    doc["flows"][0]["source"]["provenance"] = "ds-404"
    with pytest.raises(FlowsError, match="provenance record 'ds-404' is not in the ledger"):
        Engine(led).evaluate(
            parse_flows(yaml.safe_dump(doc, allow_unicode=True), "f.yaml", led.declared_purposes())
        )
    with pytest.raises(FlowsError, match="unknown purpose 'fraud_alerts'"):
        parse_flows(yaml.safe_dump(doc, allow_unicode=True), "f.yaml")  # without the ledger's purposes
    assert [e["action"] for e in led.audit_entries()] == [
        "purpose.declare",
        "provenance.record",
        "provenance.record",
        "consent.record",
    ]
    led.close()


def test_audit_log_is_append_only_and_tampering_is_detected(ledger_url: str) -> None:
    led = Ledger.open(ledger_url)
    for i in range(5):
        _record(led, f"c{i}", S(i))
    with pytest.raises(Exception, match="append-only"), led.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_audit SET actor = 'mallory' WHERE seq = 3"))
    assert led.verify().ok
    # Someone with database rights removes the guard and edits history: verify finds the entry.
    with led.engine.begin() as conn:
        if led.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER ledger_audit_no_update"))
            conn.execute(text("DROP TRIGGER ledger_audit_no_delete"))
        else:
            conn.execute(text("ALTER TABLE ledger_audit DISABLE TRIGGER ledger_audit_append_only"))
        conn.execute(
            text("UPDATE ledger_audit SET payload = replace(payload, 'separate', 'bundled') WHERE seq = 3")
        )
    res = led.verify()
    assert not res.ok and res.bad_seq == 3 and "altered" in (res.problem or "")
    with led.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_audit WHERE seq >= 3"))
    res = led.verify()
    assert not res.ok and "truncated" in (res.problem or "")
    led.close()


def test_newer_schema_is_refused(ledger_url: str) -> None:
    from alembic.script import ScriptDirectory

    from piguard.ledger.store import _script_location

    led = Ledger.open(ledger_url)
    assert led.schema_revision() == ScriptDirectory(_script_location()).get_current_head()
    with led.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_schema_version SET version_num = '0999'"))
    led.close()
    with pytest.raises(LedgerError, match="schema revision '0999', newer than this piguard knows"):
        Ledger.open(ledger_url)


def test_models_match_migrations(ledger_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from piguard.ledger.models import Base

    led = Ledger.open(ledger_url)
    with led.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": "ledger_schema_version"})
        diff = [
            d
            for d in compare_metadata(ctx, Base.metadata)
            # Other capabilities' tables (and their indexes) share the database: not the ledger's models.
            if d[0] != "remove_table"
            and not (d[0] == "remove_index" and not d[1].table.name.startswith("ledger_"))
        ]
    assert diff == []
    led.close()


def test_unreachable_or_bad_urls() -> None:
    with pytest.raises(LedgerError, match="cannot use ledger nope://"):
        Ledger.open("nope://")
    with pytest.raises(LedgerError, match=r"cannot open ledger postgresql\+psycopg://postgres@127.0.0.1:9/x"):
        Ledger.open("postgresql+psycopg://postgres@127.0.0.1:9/x")
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger.open("/no/such/dir/ledger.db")
