"""What the passport takes from a real ledger (SQLite here; PostgreSQL below when it runs): provenance
with its audit entry, consent coverage as counts and one hash, and a crawl's summary."""

from __future__ import annotations

import base64
import csv
import hashlib
import json

import pytest
from passport_data import APPLICANTS, BANK
from typer.testing import CliRunner

from piguard.cli import app
from piguard.ledger import Ledger, load_key, pseudonym
from piguard.passport import IssueError, IssueRequest, issue

runner = CliRunner()


def _ids(n: int) -> list[str]:
    with open(APPLICANTS, encoding="utf-8") as fh:
        return [r["身份证号"] for r in csv.DictReader(fh)][:n]


def _ledger_with_consents(url: str) -> Ledger:
    """20 applicants: 10 covered, 3 withdrawn, 2 bundled, 2 for another recipient, 3 never asked."""
    led = Ledger.open(url)
    key = load_key(led.url, create=True)
    led.record_provenance(
        "applicants-q3",
        dataset="loan_applicants.csv",
        method="collected_from_subject",
        legal_basis="consent",
        source_identity="our app",
        categories=["PERSON", "INCOME"],
    )
    cats = ["CN_RESIDENT_ID", "PHONE_NUMBER", "PERSON", "INCOME", "CREDIT_RECORD", "GENDER"]
    for i, raw in enumerate(_ids(17)):
        kind = "bundled" if 13 <= i < 15 else "separate"
        recipients = ["另一家银行"] if i >= 15 else [BANK]
        cid = led.record_consent(
            subject_id=pseudonym(raw, key),
            kind=kind,
            purposes=["credit_assessment"],
            categories=cats,
            recipients=recipients,
        )
        if 10 <= i < 13:
            led.withdraw_consent(cid)
    return led


def _predicate(path) -> dict:
    return json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))["predicate"]


def test_consent_coverage_and_provenance_from_the_ledger(supply, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _ledger_with_consents(url).close()
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("身份证号\n" + "\n".join(_ids(20)) + "\n", "utf-8")
    out = tmp_path / "p.json"
    key_file = str(supply.root / "trusted" / "supplier.key")
    res = runner.invoke(
        app,
        [
            "passport",
            "issue",
            str(supply.delivery),
            "--key",
            key_file,
            "--out",
            str(out),
            "--purpose",
            "credit_assessment",
            "--recipient",
            BANK,
            "--sampled",
            "--ledger",
            url,
            "--provenance",
            "applicants-q3",
            "--subjects",
            str(subjects),
            "--subject-column",
            "身份证号",
        ],
    )
    assert res.exit_code == 0, res.output
    pred = _predicate(out)
    c = pred["consent"]
    assert (c["subjects"], c["covered"], c["withdrawn"], c["notInLedger"]) == (20, 10, 3, 3)
    assert c["coveredShare"] == 0.5
    key = load_key(url)
    expected = sorted(pseudonym(r, key) for r in _ids(20))
    assert c["subjectSetSha256"] == hashlib.sha256("\n".join(expected).encode()).hexdigest()
    text = out.read_text() + base64.b64decode(json.loads(out.read_text())["payload"]).decode()
    assert not any(r in text for r in _ids(20)) and not any(p in text for p in expected)
    prov = pred["provenance"]
    assert (prov["method"], prov["legalBasis"], prov["source"]) == (
        "collected_from_subject",
        "consent",
        "our app",
    )
    led = Ledger.open(url)
    entry = next(
        e for e in led.audit_entries(object_id="applicants-q3") if e["action"] == "provenance.record"
    )
    led.close()
    assert prov["auditEntry"] == {"seq": entry["seq"], "hash": entry["hash"]}
    assert prov["recordedAt"].endswith("Z")


def test_ledger_errors_name_the_input(supply, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    _ledger_with_consents(url).close()
    base = dict(
        data=[str(supply.delivery)],
        key=supply.supplier,
        out=str(tmp_path / "p.json"),
        purposes=["credit_assessment"],
        recipients=[BANK],
        sampled_scan=True,
    )
    with pytest.raises(IssueError, match="provenance record 'nope' is not in the ledger"):
        issue(IssueRequest(**base, ledger=url, provenance_id="nope"))
    with pytest.raises(IssueError, match="does not exist"):
        issue(IssueRequest(**base, ledger=str(tmp_path / "absent.db"), provenance_id="x"))
    with pytest.raises(IssueError, match="pass --ledger"):
        issue(IssueRequest(**base, provenance_id="applicants-q3"))
    with pytest.raises(IssueError, match="unknown purpose 'selling'"):
        issue(IssueRequest(**{**base, "purposes": ["selling"]}))
    assert not (tmp_path / "p.json").exists()


def test_crawl_summary_in_provenance(supply, tmp_path):
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    for worker, stored in (("", 40), ("-w2", 2)):
        (crawl / f"summary{worker}.json").write_text(
            json.dumps(
                {
                    "pages_stored": stored,
                    "refused_robots": 3,
                    "protected": 2,
                    "protected_by_kind": {"login": 2},
                    "reserved": 1,
                    "records": stored + 6,
                    "pi_removed_by_entity": {"PHONE_NUMBER": 5},
                }
            )
        )
        (crawl / f"provenance{worker}.jsonl").write_text('{"url": "https://example.org/"}\n')
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    led = Ledger.open(url)
    led.record_provenance(
        "crawl-1",
        dataset="pages",
        method="crawled_public",
        legal_basis="public_disclosed",
        source_identity="example.org",
    )
    led.close()
    out = tmp_path / "p.json"
    issue(
        IssueRequest(
            data=[str(supply.delivery)],
            key=supply.supplier,
            out=str(out),
            purposes=["risk_control"],
            recipients=["*"],
            ledger=url,
            provenance_id="crawl-1",
            crawl_dir=str(crawl),
            sampled_scan=True,
        )
    )
    cr = _predicate(out)["provenance"]["crawl"]
    assert (cr["pagesStored"], cr["refusedByRobots"], cr["protectedSkipped"], cr["optOutsHonoured"]) == (
        42,
        6,
        4,
        2,
    )
    assert cr["protectedByKind"] == {"login": 4} and cr["piRemovedByEntity"] == {"PHONE_NUMBER": 10}
    assert [f["name"] for f in cr["provenanceFiles"]] == ["provenance-w2.jsonl", "provenance.jsonl"]


def test_consent_coverage_on_postgresql(postgres_url, supply, tmp_path, monkeypatch):
    import uuid

    import sqlalchemy as sa

    schema = f"pp_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(postgres_url)
    with eng.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        monkeypatch.setenv("PIGUARD_LEDGER_KEY", "00" * 32)
        _ledger_with_consents(url).close()
        subjects = tmp_path / "subjects.csv"
        subjects.write_text("身份证号\n" + "\n".join(_ids(20)) + "\n", "utf-8")
        out = tmp_path / "p.json"
        req = IssueRequest(
            data=[str(supply.delivery)],
            key=supply.supplier,
            out=str(out),
            purposes=["credit_assessment"],
            recipients=[BANK],
            ledger=url,
            subjects=str(subjects),
            subject_column="身份证号",
            sampled_scan=True,
        )
        issue(req)
        c = _predicate(out)["consent"]
        assert (c["subjects"], c["covered"], c["withdrawn"], c["notInLedger"]) == (20, 10, 3, 3)
    finally:
        with eng.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()
