"""PSI between two real processes: the serving member (``piguard joint psi serve``) and the querier (the
CLI, or the library in this process), over HTTP on loopback."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import polars as pl
import pytest

from piguard.joint import (
    AuthenticationError,
    LimitExceededError,
    NotLawfulError,
    PeerError,
    psi_query,
)
from piguard.keys import load_trust

from .conftest import Members, run_cli, write_csv

SCHEMA = resources.files("piguard.schemas") / "joint-psi-report.schema.json"
LAWFUL = ["--purpose", "risk_control", "--legal-basis", "consent", "--consent", "separate"]


def _sets(tmp_path: Path) -> tuple[Path, Path, set[str]]:
    common = [f"138{i:08d}" for i in range(120)]
    # The querier writes phones plainly, the server with +86 and spaces: normalisation makes them meet.
    querier = [*common, *(f"139{i:08d}" for i in range(80)), "not-a-phone", "12345"]
    server = [f"+86 {p[:3]} {p[3:7]} {p[7:]}" for p in common] + [f"137{i:08d}" for i in range(150)]
    q = tmp_path / "applicants.csv"
    q.write_text("name,phone\n" + "".join(f"n{i},{p}\n" for i, p in enumerate(querier)), encoding="utf-8")
    s = write_csv(tmp_path / "borrowers.csv", "mobile", server)
    return q, s, set(common)


def _serve_args(members: Members, ids: Path, column: str, *extra: str) -> list[str]:
    return [
        "psi",
        "serve",
        "--ids",
        str(ids),
        "--column",
        column,
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        *extra,
    ]


def test_intersection_between_two_processes(tmp_path: Path, members: Members, serve) -> None:
    q, s, common = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile"))
    out = tmp_path / "matched.csv"
    r = run_cli(
        "joint",
        "psi",
        "query",
        srv.url,
        "--ids",
        str(q),
        "--column",
        "phone",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    jsonschema.validate(report, json.loads(SCHEMA.read_text("utf-8")))
    assert report["intersection_size"] == 120
    assert report["own_set_size"] == 200 and report["partner_set_size"] == 270
    assert report["invalid_dropped"] == 2
    assert report["partner"] == "provider"
    rows = pl.read_csv(out, infer_schema=False)
    assert rows.columns == ["name", "phone"]  # the querier's own rows, all columns
    assert set(rows["phone"]) == common
    # The server logged the run with sizes only and never learnt the intersection size.
    logged = [json.loads(x) for x in srv.log().splitlines() if x.startswith('{"complete"')]
    assert logged and logged[0]["partner_set_size"] == 200 and logged[0]["own_set_size"] == 270
    assert "intersection_size" not in logged[0]
    assert "1380000" not in srv.log()


def test_cardinality_only(tmp_path: Path, members: Members, serve) -> None:
    q, s, _ = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile"))
    out = tmp_path / "count.json"
    r = run_cli(
        "joint",
        "psi",
        "query",
        srv.url,
        "--ids",
        str(q),
        "--column",
        "phone",
        "--cardinality",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text("utf-8"))
    jsonschema.validate(report, json.loads(SCHEMA.read_text("utf-8")))
    assert report["mode"] == "cardinality"
    assert report["intersection_size"] == 120
    assert {"own_set_size", "partner_set_size", "invalid_dropped", "timings"} <= set(report)
    assert report["timings"]["total"] > 0


def test_refuses_without_purpose_and_legal_basis(tmp_path: Path, members: Members) -> None:
    q, _, _ = _sets(tmp_path)
    out = tmp_path / "x.csv"
    for verb in (["psi", "query", "http://127.0.0.1:9"], ["psi", "serve"]):
        r = run_cli(
            "joint",
            *verb,
            "--ids",
            str(q),
            "--column",
            "phone",
            "--key",
            str(members.key("bank")),
            "--trust",
            str(members.trust),
            "--purpose",
            "risk_control",
            "--out",
            str(out),
        )
        if verb[1] == "serve":  # serve has no --out; drop it to reach the lawfulness check
            r = run_cli(
                "joint",
                *verb,
                "--ids",
                str(q),
                "--column",
                "phone",
                "--key",
                str(members.key("bank")),
                "--trust",
                str(members.trust),
                "--purpose",
                "risk_control",
            )
        assert r.returncode == 2
        assert "declared purpose and legal basis" in r.stderr
        assert "Traceback" not in r.stderr
    assert not out.exists()


def test_rule_engine_denies_provision_without_separate_consent(tmp_path: Path, members: Members) -> None:
    q, _, _ = _sets(tmp_path)
    r = run_cli(
        "joint",
        "psi",
        "query",
        "http://127.0.0.1:9",
        "--ids",
        str(q),
        "--column",
        "phone",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        "--purpose",
        "risk_control",
        "--legal-basis",
        "consent",
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert r.returncode == 2
    assert "PIPL-23-SEPARATE-PROVISION" in r.stderr


def test_ledger_gets_sizes_never_identifiers(tmp_path: Path, members: Members, serve) -> None:
    q, s, _ = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile"))
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    r = run_cli(
        "joint",
        "psi",
        "query",
        srv.url,
        "--ids",
        str(q),
        "--column",
        "phone",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--ledger",
        ledger,
        "--out",
        str(tmp_path / "m.csv"),
    )
    assert r.returncode == 0, r.stderr
    from piguard.ledger import Ledger

    led = Ledger.open(ledger)
    try:
        activities = [e for e in led.audit_entries() if e["action"] == "activity.record"]
        entries = [e for e in led.audit_entries() if e["action"] == "joint.run"]
        assert led.verify().ok
    finally:
        led.close()
    assert len(entries) == 1 and len(activities) == 1
    assert entries[0]["payload"]["activity"] == activities[0]["object_id"]
    sizes = entries[0]["payload"]["sizes"]
    assert (sizes["intersection"], sizes["own set"], sizes["partner set"]) == (120, 200, 270)
    payload = json.dumps([entries[0]["payload"], activities[0]["payload"]], ensure_ascii=False)
    assert "138000" not in payload and "+86" not in payload


def test_purpose_mismatch_untrusted_member_and_limits(tmp_path: Path, members: Members, serve) -> None:
    _, s, _ = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile", "--max-ids", "50", "--max-queries-per-day", "2"))
    trust = load_trust(members.trust)
    keys = [f"PHONE_NUMBER:+86138{i:08d}" for i in range(40)]
    bank = members.keys["bank"]
    with pytest.raises(NotLawfulError, match="purpose 'marketing' is not the purpose"):
        psi_query(srv.url, keys, me=bank, trust=trust, purpose="marketing", legal_basis="consent")
    with pytest.raises(AuthenticationError, match="not in the trust store"):
        psi_query(
            srv.url,
            keys,
            me=members.keys["mallory"],
            trust=trust,
            purpose="risk_control",
            legal_basis="consent",
        )
    with pytest.raises(LimitExceededError, match="at most 50 identifiers; it holds 51"):
        psi_query(
            srv.url,
            [*keys, *(f"PHONE_NUMBER:+86139{i:08d}" for i in range(11))],
            me=bank,
            trust=trust,
            purpose="risk_control",
            legal_basis="consent",
        )
    # Two queries a day are allowed (the refused ones above do not count), the third is refused.
    for _ in range(2):
        assert (
            psi_query(
                srv.url, keys, me=bank, trust=trust, purpose="risk_control", legal_basis="consent"
            ).intersection_size
            == 40
        )
    with pytest.raises(LimitExceededError, match="2 queries for today"):
        psi_query(srv.url, keys, me=bank, trust=trust, purpose="risk_control", legal_basis="consent")


def test_server_that_goes_away_mid_protocol_gives_no_result(tmp_path: Path, members: Members, serve) -> None:
    from piguard.joint import ecdh
    from piguard.joint.transport import Client

    _, s, _ = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile"))
    trust = load_trust(members.trust)
    with Client(srv.url, members.keys["bank"], trust, timeout=20) as client:
        client.hello(
            "ecdh-psi-x25519",
            {"mode": "intersection", "n": 2, "purpose": "risk_control", "legal_basis": "consent"},
        )
        pts = ecdh.blind(ecdh.new_scalar(), ecdh.hash_points(["PHONE_NUMBER:+8613800000001"]))
        client.call("blinded", {"index": 0, "last": False}, b"".join(pts))
        srv.proc.kill()
        srv.proc.wait(10)
        with pytest.raises(PeerError, match="went away"):
            client.call("blinded", {"index": 1, "last": True}, b"".join(pts))
    # The CLI against a dead server: exit 2, a named error, no output file.
    q, _, _ = _sets(tmp_path)
    out = tmp_path / "never.csv"
    r = run_cli(
        "joint",
        "psi",
        "query",
        srv.url,
        "--ids",
        str(q),
        "--column",
        "phone",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--out",
        str(out),
    )
    assert r.returncode == 2 and "cannot be reached" in r.stderr
    assert not out.exists()


def test_bad_files_are_named(tmp_path: Path, members: Members) -> None:
    base = [
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--out",
        str(tmp_path / "o"),
    ]
    missing = run_cli(
        "joint",
        "psi",
        "query",
        "http://127.0.0.1:9",
        "--ids",
        str(tmp_path / "nope.csv"),
        "--column",
        "phone",
        *base,
    )
    assert missing.returncode == 2 and "nope.csv does not exist" in missing.stderr
    q, _, _ = _sets(tmp_path)
    nocol = run_cli("joint", "psi", "query", "http://127.0.0.1:9", "--ids", str(q), "--column", "tel", *base)
    assert nocol.returncode == 2 and "has no column 'tel'; columns: name, phone" in nocol.stderr
    badkey = run_cli(
        "joint",
        "psi",
        "query",
        "http://127.0.0.1:9",
        "--ids",
        str(q),
        "--column",
        "phone",
        "--key",
        str(tmp_path / "none.key"),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--out",
        str(tmp_path / "o"),
    )
    assert badkey.returncode == 2 and "does not exist" in badkey.stderr


def test_querier_that_goes_away_is_logged_incomplete(tmp_path: Path, members: Members, serve) -> None:
    import time

    from piguard.joint import ecdh
    from piguard.joint.transport import Client

    _, s, _ = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile"), env={"PIGUARD_JOINT_IDLE_TIMEOUT": "2"})
    with Client(srv.url, members.keys["bank"], load_trust(members.trust), timeout=20) as client:
        client.hello(
            "ecdh-psi-x25519",
            {"mode": "intersection", "n": 2, "purpose": "risk_control", "legal_basis": "consent"},
        )
        pts = ecdh.blind(ecdh.new_scalar(), ecdh.hash_points(["PHONE_NUMBER:+8613800000001"]))
        client.call("blinded", {"index": 0, "last": False}, b"".join(pts))
    # The querier stops half-way. The server drops the session and logs the run as incomplete.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and '"complete": false' not in srv.log():
        time.sleep(0.5)
    run = next(json.loads(x) for x in srv.log().splitlines() if x.startswith('{"complete"'))
    assert run["complete"] is False and run["partner_set_size"] == 2 and run["partner"] == "bank"


def test_ledger_consent_is_checked_against_the_authenticated_partner(
    tmp_path: Path, members: Members, serve
) -> None:
    from piguard.ledger import Ledger, load_key, pseudonym

    q, s, _ = _sets(tmp_path)
    srv = serve(*_serve_args(members, s, "mobile"))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    led = Ledger.open(url)
    try:
        sid = pseudonym("13800000001", load_key(url, create=True))
        led.record_consent(
            subject_id=sid,
            kind="separate",
            purposes=["risk_control"],
            categories=["PHONE_NUMBER"],
            recipients=["provider"],
            consent_id="c-provider",
        )
        led.record_consent(
            subject_id=sid,
            kind="separate",
            purposes=["risk_control"],
            categories=["PHONE_NUMBER"],
            recipients=["another-bureau"],
            consent_id="c-other",
        )
    finally:
        led.close()
    base = [
        "joint",
        "psi",
        "query",
        srv.url,
        "--ids",
        str(q),
        "--column",
        "phone",
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        "--purpose",
        "risk_control",
        "--legal-basis",
        "consent",
        "--ledger",
        url,
    ]
    ok = run_cli(*base, "--consent-ref", "c-provider", "--out", str(tmp_path / "ok.csv"))
    assert ok.returncode == 0, ok.stderr
    # A consent naming another recipient does not cover this partner (the name its signed key carries).
    other = run_cli(*base, "--consent-ref", "c-other", "--out", str(tmp_path / "no.csv"))
    assert other.returncode == 2
    assert "PIPL-14-SCOPE" in other.stderr and "recipient:provider" in other.stderr
    assert not (tmp_path / "no.csv").exists()
    led = Ledger.open(url)
    try:
        led.withdraw_consent("c-provider")
    finally:
        led.close()
    withdrawn = run_cli(*base, "--consent-ref", "c-provider", "--out", str(tmp_path / "w.csv"))
    assert withdrawn.returncode == 2 and "PIPL Art. 15" in withdrawn.stderr
