"""The rights service end to end on real SQLite and PostgreSQL ledgers and stores: every request type,
identity by one-time code, deadlines, signed receipts, refusals, and the failures a person must not suffer
from (a store down, a guessed code, a stranger's identifier)."""

from __future__ import annotations

import copy
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rights_env import EMAIL, KEY, OTHER_PHONE, PHONE, RESIDENT_ID, Env, check_schema
from sqlalchemy import create_engine, text

from piguard.ledger import pseudonym
from piguard.rights import (
    Limits,
    ReceiptError,
    RightsError,
    RightsService,
    Staff,
    load_stores,
    verify_receipt,
)

AGENT = Staff("agent1", "agent")


def _consent(env: Env, cid: str = "c1", who: str = PHONE) -> None:
    env.ledger.record_consent(
        subject_id=pseudonym(who, KEY),
        kind="separate",
        purposes=["data_supply"],
        categories=["PERSON", "CREDIT_RECORD"],
        recipients=["某商业银行"],
        consent_id=cid,
    )


def _crm(env: Env, sql: str) -> list[tuple]:
    db = sqlite3.connect(env.crm_url.removeprefix("sqlite:///"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_access_and_copy_gather_every_store_and_the_ledger(env: Env) -> None:
    _consent(env)
    env.ledger.record_provenance(
        "crm-2026",
        dataset="CRM export 2026",
        method="collected_from_subject",
        legal_basis="contract",
        source_identity="our app",
        categories=["PERSON"],
    )
    rid = env.service.submit("access", {"kind": "phone", "value": "+86 138-1234-5678"})["id"]
    out = env.service.verify(rid, env.code(rid))
    assert out["status"] == "verified" and len(out["due"]) == 10 and len(out["token"]) >= 40
    subject = env.service.subject_for(out["token"])
    assert subject == pseudonym(PHONE, KEY)
    req = env.service.get(rid, subject)
    assert req["status"] == "completed" and req["type"] == "access"
    summary = req["outcome"]["summary"]
    assert summary["crm"] == {"customers": 2, "events": 1}  # both spellings of the number are the person's
    if env.orders_url:
        assert summary["orders"] == {"orders": 2}  # found by keyed pseudonym
    assert set(req["outcome"]["purposes"]) == {"data_supply", "marketing"}
    assert req["outcome"]["recipients"] == ["某商业银行"]

    data = json.loads(env.service.copy(rid, subject, "json")[0])
    check_schema("rights-copy", data)
    names = {r["name"] for r in data["held"]["crm"]["customers"]}
    assert names == {"王小明"} and OTHER_PHONE not in json.dumps(data)
    assert data["consents"][0]["id"] == "c1" and data["sources"][0]["id"] == "crm-2026"
    body, media = env.service.copy(rid, subject, "csv")
    assert media.startswith("text/csv") and body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == "section,source,record,field,value" and any("王小明" in ln for ln in lines)
    with pytest.raises(RightsError) as e:
        env.service.copy(rid, subject, "xml")
    assert e.value.status == 422


def test_an_identifier_nobody_has_gets_the_same_answer(env: Env) -> None:
    known = env.service.submit("access", {"kind": "phone", "value": PHONE})
    unknown = env.service.submit("access", {"kind": "phone", "value": "13700000000"})
    assert known.keys() == unknown.keys() and known["status"] == unknown["status"] == "awaiting_verification"
    assert (env.outbox / f"{unknown['id']}.txt").exists()  # a code goes out either way
    token = env.service.verify(unknown["id"], env.code(unknown["id"]))["token"]
    req = env.service.get(unknown["id"], env.service.subject_for(token))
    assert req["status"] == "completed" and req["outcome"]["summary"] == {}


def test_another_subjects_request_is_not_found(env: Env) -> None:
    mine, token = env.submit_verified("access")
    theirs, _ = env.submit_verified("access", OTHER_PHONE)
    me = env.service.subject_for(token)
    assert env.service.get(mine, me)["id"] == mine
    for call in (lambda: env.service.get(theirs, me), lambda: env.service.copy(theirs, me, "json")):
        with pytest.raises(RightsError) as e:
            call()
        assert e.value.status == 404
    assert env.service.subject_for("not-a-token") is None


def test_guessing_the_code_locks_the_request(env: Env) -> None:
    rid = env.service.submit("deletion", {"kind": "phone", "value": PHONE})["id"]
    right = env.code(rid)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        with pytest.raises(RightsError, match=f"{left} attempts left"):
            env.service.verify(rid, wrong)
    with pytest.raises(RightsError) as e:
        env.service.verify(rid, wrong)
    assert e.value.status == 429
    with pytest.raises(RightsError) as e:
        env.service.verify(rid, right)  # the right code no longer opens it
    assert e.value.status == 404
    assert "rights.locked" in [a["action"] for a in env.ledger.audit_entries(rid)]


def test_codes_expire_after_ten_minutes(env: Env) -> None:
    rid = env.service.submit("access", {"kind": "email", "value": EMAIL})["id"]
    later = datetime.now(UTC) + timedelta(minutes=11)
    env.service.clock = lambda: later
    with pytest.raises(RightsError) as e:
        env.service.verify(rid, env.code(rid))
    assert e.value.status == 410


def test_codes_are_rate_limited_per_contact_and_per_address(env: Env) -> None:
    env.service.limits = Limits(codes_per_contact=(2, 900), submits_per_client=(3, 3600))
    for _ in range(2):
        env.service.submit("access", {"kind": "phone", "value": PHONE}, client="10.0.0.1")
    with pytest.raises(RightsError) as e:
        env.service.submit("access", {"kind": "phone", "value": "+86 13812345678"}, client="10.0.0.2")
    assert e.value.status == 429  # same person, another spelling and address: still limited
    env.service.submit("access", {"kind": "phone", "value": OTHER_PHONE}, client="10.0.0.1")
    with pytest.raises(RightsError) as e:
        env.service.submit("access", {"kind": "phone", "value": "13700000000"}, client="10.0.0.1")
    assert e.value.status == 429


def test_approved_deletion_runs_in_every_store_and_ends_in_a_signed_receipt(env: Env) -> None:
    rid, _ = env.submit_verified("deletion")
    queue = env.service.queue(open_only=True)
    assert [q["id"] for q in queue] == [rid] and queue[0]["working_days_left"] == 15
    out = env.service.decide(rid, "approve", AGENT)
    assert out["status"] == "completed"
    receipt = out["outcome"]["receipt"]
    verify_receipt(receipt, env.signing.public)
    check_schema("rights-receipt", receipt)
    assert receipt["complete"] and receipt["subject"] == pseudonym(PHONE, KEY)
    by_table = {(s["store"], s["table"]): s for s in receipt["stores"]}
    assert (
        by_table[("crm", "customers")]["rows_affected"] == 2
        and by_table[("crm", "customers")]["remaining"] == 0
    )
    assert by_table[("crm", "events")]["rows_affected"] == 1
    assert _crm(env, f"SELECT COUNT(*) FROM customers WHERE mobile LIKE '%{PHONE}'") == [(0,)]
    assert _crm(env, "SELECT name FROM customers") == [("李四",)]  # nobody else touched
    if env.orders_url:
        assert by_table[("orders", "orders")] == {
            "store": "orders",
            "table": "orders",
            "mode": "restrict",
            "rows_affected": 2,
            "remaining": 0,
        }
        eng = create_engine(env.orders_url)
        with eng.connect() as c:  # restricted, not deleted: a lawful retention stays, frozen
            rows = c.execute(text("SELECT restricted, COUNT(*) FROM orders GROUP BY restricted")).all()
        eng.dispose()
        assert dict(rows) == {True: 2, False: 1}

    forged = copy.deepcopy(receipt)
    forged["stores"][0]["remaining"] = 5
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(forged, env.signing.public)
    actions = [a["action"] for a in env.ledger.audit_entries(rid)]
    assert actions == ["rights.submit", "rights.verify", "rights.decide", "rights.execute"]
    assert env.ledger.verify().ok


def test_a_store_down_mid_deletion_leaves_the_request_open_naming_it(env: Env, tmp_path: Path) -> None:
    # A second CRM whose second table cannot take the deletion: its first table must not lose a row.
    broken = tmp_path / "broken.db"
    db = sqlite3.connect(broken)
    db.executescript("CREATE TABLE a (phone TEXT); CREATE TABLE b (phone TEXT NOT NULL, note TEXT);")
    db.execute("INSERT INTO a VALUES (?)", (PHONE,))
    db.execute("INSERT INTO b VALUES (?, 'x')", (PHONE,))
    db.commit()
    db.close()
    extra = (
        env.stores_path.read_text(encoding="utf-8")
        + f"""
  - name: archive
    url: sqlite:///{broken}
    tables:
      - {{table: a, key: phone, identifier: phone}}
      - {{table: b, key: phone, identifier: phone, deletion: {{"null": [note]}}}}
  - name: offline
    url: postgresql+psycopg://postgres@127.0.0.1:1/nowhere
    tables:
      - {{table: t, key: phone, identifier: phone}}
"""
    )
    env.stores_path.write_text(extra, encoding="utf-8")
    env.service.stores = load_stores(env.stores_path)
    rid, _ = env.submit_verified("deletion")
    out = env.service.decide(rid, "approve", AGENT)
    assert out["status"] == "in_progress"
    failed = {f["store"]: f["error"] for f in out["outcome"]["failed"]}
    assert set(failed) == {"archive", "offline"}
    assert "NOT NULL" in failed["archive"] and PHONE not in json.dumps(failed)
    db = sqlite3.connect(broken)
    assert db.execute("SELECT COUNT(*) FROM a").fetchone() == (1,)  # rolled back with b: nothing half-done
    db.close()
    assert _crm(env, f"SELECT COUNT(*) FROM customers WHERE mobile LIKE '%{PHONE}'") == [(0,)]
    receipt = out["outcome"]["receipt"]
    assert not receipt["complete"] and {f["store"] for f in receipt["failed"]} == {"archive", "offline"}
    assert env.service.queue(status="in_progress")[0]["id"] == rid

    # Once the stores are mended, approving again finishes; the receipt covers every store.
    env.stores_path.write_text(extra.split("  - name: archive")[0], encoding="utf-8")
    env.service.stores = load_stores(env.stores_path)
    out = env.service.decide(rid, "approve", AGENT)
    assert out["status"] == "completed" and out["outcome"]["receipt"]["complete"]


def test_refusal_cites_the_law_and_must_fit_the_request(env: Env) -> None:
    rid, token = env.submit_verified("deletion")
    with pytest.raises(RightsError) as e:
        env.service.decide(rid, "refuse", AGENT, "correction_unverified")
    assert e.value.status == 422 and "retention_cybersecurity_logs" in str(e.value)
    with pytest.raises(RightsError):
        env.service.decide(rid, "refuse", AGENT, None)
    out = env.service.decide(rid, "refuse", AGENT, "retention_cybersecurity_logs", "日志保留至 2027 年 5 月")
    refused = env.service.get(rid, env.service.subject_for(token))["outcome"]["refused"]
    assert out["status"] == "refused"
    assert "个人信息保护法 第47条第2款" in refused["citation"] and "网络安全法 第21条" in refused["citation"]
    with pytest.raises(RightsError) as e:
        env.service.decide(rid, "approve", AGENT)
    assert e.value.status == 409
    with pytest.raises(RightsError) as e:
        env.service.decide(rid, "approve", Staff("svc", "service"))
    assert e.value.status == 403


def test_correction_updates_every_table_that_holds_the_field(env: Env) -> None:
    with pytest.raises(RightsError, match="field must be one of address, name"):
        env.service.submit("correction", {"kind": "phone", "value": PHONE}, {"corrections": {"salary": "1"}})
    rid, _ = env.submit_verified("correction", details={"corrections": {"address": "北京市西城区某街 2 号"}})
    out = env.service.decide(rid, "approve", AGENT)
    (res,) = out["outcome"]["receipt"]["stores"]
    assert res == {
        "store": "crm",
        "table": "customers",
        "mode": "correct",
        "rows_affected": 2,
        "remaining": 0,
    }
    assert _crm(env, "SELECT DISTINCT address FROM customers WHERE name = '王小明'") == [
        ("北京市西城区某街 2 号",)
    ]


def test_withdrawal_opt_out_and_preferences(env: Env) -> None:
    _consent(env, "c1")
    _consent(env, "c2")
    subject = pseudonym(PHONE, KEY)
    rid, _ = env.submit_verified("withdraw_consent", details={"consent_id": "c2"})
    assert env.service.get(rid, subject)["outcome"] == {"withdrawn": ["c2"], "already_withdrawn": []}
    assert (
        env.ledger.consent("c2")["withdrawn_at"] is not None
        and env.ledger.consent("c1")["withdrawn_at"] is None
    )
    rid, _ = env.submit_verified("withdraw_consent", OTHER_PHONE, details={"consent_id": "c1"})
    assert env.service.get(rid, pseudonym(OTHER_PHONE, KEY))["outcome"]["withdrawn"] == []  # not theirs
    assert env.ledger.consent("c1")["withdrawn_at"] is None

    assert env.service.preferences(subject) == {"personalization": True, "targeted_push": True}
    env.submit_verified("opt_out_personalization", details={"personalization": False, "targeted_push": False})
    assert env.service.preferences(subject) == {"personalization": False, "targeted_push": False}
    env.submit_verified("opt_out_personalization", details={"personalization": True, "targeted_push": False})
    assert env.service.preferences(subject) == {"personalization": True, "targeted_push": False}


def test_explain_cancel_and_complaint(env: Env) -> None:
    _consent(env)
    subject = pseudonym(PHONE, KEY)
    rid, _ = env.submit_verified("explain")
    expl = env.service.get(rid, subject)["outcome"]
    assert [p["id"] for p in expl["purposes"]] == ["data_supply", "marketing"]
    assert expl["consents"][0]["recipients"] == ["某商业银行"]

    rid, _ = env.submit_verified("complaint", details={"category": "C6", "text": "申请删除一个月无人处理"})
    req = env.service.get(rid, subject)
    assert req["status"] == "verified" and "12377" in {r["phone"] for r in req["outcome"]["routes"]}
    env.service.decide(rid, "approve", AGENT, answer="已核实并删除，致歉。")
    req = env.service.get(rid, subject)
    assert req["status"] == "completed" and req["outcome"]["answer"] == "已核实并删除，致歉。"
    assert env.service.stats()["complaints_by_category"] == {"C6": 1}

    rid, _ = env.submit_verified("cancel_account")
    out = env.service.decide(rid, "approve", AGENT)
    assert out["outcome"]["consents_withdrawn"] == ["c1"] and out["outcome"]["receipt"]["complete"]


def test_a_resident_id_opens_only_what_is_linked_to_the_verified_contact(env: Env) -> None:
    rid = env.service.submit(
        "access",
        {"kind": "resident_id", "value": RESIDENT_ID.lower()},
        contact={"kind": "email", "value": EMAIL},
    )["id"]
    token = env.service.verify(rid, env.code(rid))["token"]
    out = env.service.get(rid, env.service.subject_for(token))["outcome"]
    assert out["summary"]["crm"]["customers"] == 1
    # A stranger who knows the ID number but not the e-mail on file gets nothing from it.
    rid = env.service.submit(
        "access",
        {"kind": "resident_id", "value": RESIDENT_ID},
        contact={"kind": "email", "value": "stranger@example.org"},
    )["id"]
    token = env.service.verify(rid, env.code(rid))["token"]
    assert env.service.get(rid, env.service.subject_for(token))["outcome"]["summary"] == {}
    with pytest.raises(RightsError, match="needs contact"):
        env.service.submit("access", {"kind": "resident_id", "value": RESIDENT_ID})


def test_no_raw_contact_code_or_token_is_stored(env: Env) -> None:
    rid = env.service.submit("deletion", {"kind": "email", "value": EMAIL})["id"]
    code = env.code(rid)
    token = env.service.verify(rid, code)["token"]
    staff_token = env.service.add_staff("admin1", "admin", "correct horse")
    dump = []
    with env.ledger.engine.connect() as conn:
        for table in ("rights_requests", "rights_tokens", "rights_staff", "rights_throttle", "ledger_audit"):
            dump += [repr(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    blob = "\n".join(dump)
    for secret in (EMAIL, EMAIL.split("@")[0], code, token, staff_token, "correct horse"):
        assert secret not in blob
    assert pseudonym(EMAIL, KEY) in blob


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)  # validation happens before the database
@pytest.mark.parametrize(
    ("type_", "identifier", "details", "match"),
    [
        ("erase_everything", {"kind": "phone", "value": PHONE}, {}, "type must be one of"),
        ("access", {"kind": "passport", "value": "E1234567"}, {}, "identifier.kind"),
        ("access", {"kind": "phone", "value": "12345"}, {}, "not a valid phone number"),
        ("access", {"kind": "email", "value": "nobody"}, {}, "not an e-mail"),
        ("access", {"kind": "resident_id", "value": "110101199003071234"}, {}, "resident ID"),
        ("access", "13812345678", {}, "identifier must be an object"),
        ("complaint", {"kind": "phone", "value": PHONE}, {"category": "C9", "text": "x"}, "details.category"),
        ("complaint", {"kind": "phone", "value": PHONE}, {"category": "C1"}, "details.text"),
        (
            "opt_out_personalization",
            {"kind": "phone", "value": PHONE},
            {"personalization": "no"},
            "true or false",
        ),
        ("access", {"kind": "phone", "value": PHONE}, {"note": "x" * 20_000}, "larger than"),
    ],
)
def test_bad_input_is_named_without_echoing_it(
    env: Env, type_: str, identifier: object, details: dict, match: str
) -> None:
    with pytest.raises(RightsError, match=match) as e:
        env.service.submit(type_, identifier, details)
    assert e.value.status == 422
    if isinstance(identifier, dict):
        assert identifier["value"] not in str(e.value)


def test_stores_yaml_errors_name_the_place(tmp_path: Path) -> None:
    from piguard.rights import StoresError, parse_stores

    cases = {
        "stores: [": "not valid YAML",
        "stores: {}": "a 'stores' list",
        "stores: [{name: a, url: 'sqlite://', tables: [{table: t, key: k, identifier: fax}]}]": (
            "identifier must"
        ),
        "stores: [{name: a, url: 'sqlite://', tables: [{table: t, key: k, identifier: phone, "
        "deletion: {generalize: {city: x}}}]}]": "also generalize the key column",
        "stores: [{name: a, url: 'sqlite://', tables: [{table: t, key: k, identifier: phone, "
        "deletion: shred}]}]": "deletion must be",
        "stores: [{name: a, url_env: NO_SUCH_VAR_X, tables: []}]": "NO_SUCH_VAR_X is not set",
    }
    for text_, msg in cases.items():
        with pytest.raises(StoresError, match=msg):
            parse_stores(text_, "s.yaml")
    (tmp_path / "s.yaml").write_text(
        "stores: [{name: a, url: 'sqlite:///" + str(tmp_path / "x.db") + "', tables: "
        "[{table: t, key: k, identifier: phone, correctable: {name: nom}}]}]",
        encoding="utf-8",
    )
    import sqlite3 as s3

    s3.connect(tmp_path / "x.db").execute("CREATE TABLE t (k TEXT)").connection.commit()
    (store,) = load_stores(tmp_path / "s.yaml")
    with pytest.raises(StoresError, match="table t has no column nom"):
        store.table(store.tables[0])


def test_service_needs_a_delivery_and_a_signing_key_for_deletion(env: Env) -> None:
    bare = RightsService(env.ledger, KEY, env.service.stores)
    with pytest.raises(RightsError) as e:
        bare.submit("access", {"kind": "phone", "value": PHONE})
    assert e.value.status == 503
    rid, _ = env.submit_verified("deletion")
    with pytest.raises(RightsError, match="no signing key") as e:
        bare.decide(rid, "approve", AGENT)
    assert env.service.request_for_staff(rid)["status"] == "verified"  # nothing changed


def _about_rights(d: tuple) -> bool:
    """A difference that concerns the rights tables (the ledger's own share the database)."""
    if d[0] == "remove_table":
        return d[1].name.startswith("rights_")
    if d[0] == "remove_index":
        return d[1].table.name.startswith("rights_")
    return True


def test_rights_tables_match_their_migration(env: Env) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from piguard.rights import tables

    with env.ledger.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": "ledger_schema_version"})
        diff = [d for d in compare_metadata(ctx, tables.metadata) if _about_rights(d)]
    assert diff == []


def test_parallel_guesses_get_no_more_than_five_tries(env: Env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rid = env.service.submit("access", {"kind": "phone", "value": PHONE})["id"]
    right = env.code(rid)
    wrongs = [f"{n:06d}" for n in range(30) if f"{n:06d}" != right][:24]

    def guess(code: str) -> str:
        try:
            env.service.verify(rid, code)
            return "verified"
        except RightsError as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(guess, wrongs))
    assert sum(a.startswith("wrong code") for a in answers) == 5  # compared five times, however parallel
    assert all(a.startswith(("wrong code", "this code is locked", "no request")) for a in answers)
    assert guess(right).startswith(("no request", "this code is locked"))


def test_deletion_by_id_number_and_phone_reports_each_table_rule(env: Env) -> None:
    rid = env.service.submit(
        "deletion", {"kind": "resident_id", "value": RESIDENT_ID}, contact={"kind": "phone", "value": PHONE}
    )["id"]
    env.service.verify(rid, env.code(rid))
    receipt = env.service.decide(rid, "approve", AGENT)["outcome"]["receipt"]
    crm = [
        (s["table"], s["mode"], s["rows_affected"], s["remaining"])
        for s in receipt["stores"]
        if s["store"] == "crm"
    ]
    # The customers table is registered twice (by phone: delete; by ID number: null): two lines, neither
    # hiding the other's count.
    assert crm == [("customers", "delete", 2, 0), ("customers", "null", 0, 0), ("events", "delete", 1, 0)]
    assert receipt["complete"]


def test_check_denies_push_to_a_person_who_opted_out(env: Env) -> None:
    """The recommender's opt-out reaches the rule engine: PIPL Art. 24 para. 2 once the person says no."""
    import yaml

    from piguard.rules import Engine, parse_flows

    subject = pseudonym(PHONE, KEY)
    env.ledger.record_consent(
        subject_id=subject,
        kind="separate",
        purposes=["marketing"],
        categories=["PHONE_NUMBER"],
        consent_id="m1",
    )
    flows = {
        "controller": "某数据公司",
        "flows": [
            {"id": "push", "activity": "automated_decision", "data": ["PHONE_NUMBER"], "purpose": "marketing",
             "legal_basis": "consent", "consent": {"subject": subject}, "opt_out": True,
             "impact_assessment": True, "disclosed": True}
        ],
    }  # fmt: skip
    doc = parse_flows(yaml.safe_dump(flows, allow_unicode=True), "push.yaml")

    def rules() -> set[str]:
        (decision,) = Engine(env.ledger).evaluate(doc)
        return {r.rule for r in decision.reasons}

    assert "PIPL-24-SUBJECT-OPTED-OUT" not in rules()
    env.submit_verified("opt_out_personalization", details={"personalization": False, "targeted_push": False})
    assert "PIPL-24-SUBJECT-OPTED-OUT" in rules()
