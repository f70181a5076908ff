"""The verbs through the real CLI (Typer's runner in-process; one run of the installed ``piguard``): the
bad-input list of the issue, each with a named reason, exit 1 or 2, no traceback and no raw value."""

from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from passport_data import APPLICANTS, BANK, copy_delivery, validate
from typer.testing import CliRunner

from piguard.cli import app
from piguard.passport import IssueRequest, envelope, issue

runner = CliRunner()


def _raw_values() -> list[str]:
    with open(APPLICANTS, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r[c] for r in rows for c in ("手机号", "身份证号")] + ["110101199003071233"]


RAW = _raw_values()


def run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    out = res.output
    assert "Traceback" not in out, out
    assert not any(v in out for v in RAW), "a raw identifier reached the output"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, out


def verify_args(supply, data: Path, passport: Path | None = None, *extra: str) -> list[str]:
    return [
        "passport",
        "verify",
        str(data),
        "--passport",
        str(passport or supply.passport),
        "--trust",
        str(supply.trust_path),
        *extra,
    ]


def test_accept_with_purpose_and_recipient(supply):
    code, out = run(
        *verify_args(supply, supply.delivery, None, "--purpose", "credit_assessment", "--recipient", BANK)
    )
    assert code == 0, out
    assert out.splitlines()[0] == "accept"
    assert "k=" in out and "2-diversity" in out


def test_purpose_and_recipient_outside_the_passport(supply):
    code, out = run(
        *verify_args(supply, supply.delivery, None, "--purpose", "marketing", "--recipient", "某催收公司")
    )
    assert code == 1
    assert "purpose: purpose 'marketing' is not permitted" in out
    assert "recipient: recipient '某催收公司' is not permitted" in out


def test_truncated_and_garbled_passports_are_unusable(supply, tmp_path):
    text = supply.passport.read_bytes()
    (tmp_path / "cut.json").write_bytes(text[: len(text) // 2])
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "cut.json"))
    assert code == 2 and out.startswith("reject") and "malformed" in out and "truncated" in out
    (tmp_path / "noise.json").write_bytes(os.urandom(2000))
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "noise.json"))
    assert code == 2 and "malformed" in out
    doc = json.loads(text)
    doc["payload"] = "%%%not base64%%%"
    (tmp_path / "b64.json").write_text(json.dumps(doc))
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "b64.json"))
    assert code == 2 and "not valid base64" in out
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "absent.json"))
    assert code == 2 and "does not exist" in out


def test_signature_by_another_key(supply, tmp_path):
    doc = json.loads(supply.passport.read_text())
    payload = base64.b64decode(doc["payload"])
    forged = envelope.sign(payload, envelope.IN_TOTO_PAYLOAD_TYPE, supply.intruder)
    (tmp_path / "other.json").write_text(json.dumps(forged))
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "other.json"))
    assert code == 1 and "untrusted-key" in out and supply.intruder.key_id in out
    # The intruder claims the trusted key's id: the signature itself fails.
    forged["signatures"][0]["keyid"] = supply.supplier.key_id
    (tmp_path / "claimed.json").write_text(json.dumps(forged))
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "claimed.json"))
    assert code == 1 and "signature: the signature does not verify" in out


def test_unknown_predicate_version(supply, tmp_path):
    doc = json.loads(supply.passport.read_text())
    st = json.loads(base64.b64decode(doc["payload"]))
    st["predicateType"] = st["predicateType"].replace("/v1", "/v2")
    env = envelope.sign(envelope.canonical_json(st), envelope.IN_TOTO_PAYLOAD_TYPE, supply.supplier)
    (tmp_path / "v2.json").write_text(json.dumps(env))
    code, out = run(*verify_args(supply, supply.delivery, tmp_path / "v2.json"))
    assert code == 2 and "unknown-predicate" in out and "newer version" in out


def test_missing_and_extra_files(supply, tmp_path):
    case = copy_delivery(supply, tmp_path / "d")
    (case / "loan.deid.csv").rename(case / "renamed.csv")
    code, out = run(*verify_args(supply, case))
    assert code == 1
    assert "missing-file: loan.deid.csv" in out and "extra-file: renamed.csv" in out
    code, out = run(*verify_args(supply, tmp_path / "nowhere"))
    assert code == 2 and "no such file or directory" in out


def test_expired_passport(supply, tmp_path):
    then = datetime.now(UTC) - timedelta(days=400)
    out_path = tmp_path / "old.json"
    issue(
        IssueRequest(
            data=[str(supply.delivery)],
            key=supply.supplier,
            out=str(out_path),
            purposes=["risk_control"],
            recipients=[BANK],
            now=then,
            expires=then + timedelta(days=30),
        )
    )
    code, out = run(*verify_args(supply, supply.delivery, out_path))
    assert code == 1 and "expired: the passport expired at" in out


def test_revoked_passport(supply, tmp_path):
    lst = tmp_path / "revoked.json"
    code, out = run(
        "passport",
        "revoke",
        str(supply.passport),
        "--key",
        str(supply.root / "trusted" / "supplier.key"),
        "--list",
        str(lst),
        "--reason",
        "superseded by a corrected delivery",
    )
    assert code == 0, out
    code, out = run(*verify_args(supply, supply.delivery, None, "--revocations", str(lst)))
    assert code == 1 and "revoked: the issuer revoked this passport" in out and "superseded" in out
    validate(json.loads(base64.b64decode(json.loads(lst.read_text())["payload"])), "passport-revocations")
    code, out = run(
        *verify_args(supply, supply.delivery, None, "--revocations", str(lst), "--format", "json")
    )
    validate(json.loads(out), "passport-verdict")
    # A list signed by another key revokes nothing of this issuer's and must itself be trusted.
    other = tmp_path / "other-list.json"
    run(
        "passport",
        "revoke",
        str(supply.passport),
        "--key",
        str(supply.root / "intruder.key"),
        "--list",
        str(other),
    )
    code, out = run(*verify_args(supply, supply.delivery, None, "--revocations", str(other)))
    assert code == 2 and "not trusted" in out


def test_upstream_chain(supply, tmp_path):
    upstream_pp = tmp_path / "raw-passport.json"
    issue(
        IssueRequest(
            data=[str(APPLICANTS)],
            key=supply.supplier,
            out=str(upstream_pp),
            purposes=["risk_control"],
            recipients=["*"],
            sampled_scan=True,
        )
    )
    derived = tmp_path / "derived.json"
    code, out = run(
        "passport",
        "issue",
        str(supply.delivery),
        "--key",
        str(supply.root / "trusted" / "supplier.key"),
        "--out",
        str(derived),
        "--purpose",
        "risk_control",
        "--recipient",
        BANK,
        "--upstream",
        str(upstream_pp),
        "--sampled",
    )
    assert code == 0, out
    code, out = run(*verify_args(supply, supply.delivery, derived))
    assert code == 1 and "upstream-missing: upstream raw-passport.json" in out
    code, out = run(*verify_args(supply, supply.delivery, derived, "--upstream", str(upstream_pp)))
    assert code == 0, out
    assert "upstream raw-passport.json" in out


def test_issue_refuses_anonymized_raw_data(supply, tmp_path):
    code, out = run(
        "passport",
        "issue",
        str(APPLICANTS),
        "--key",
        str(supply.root / "trusted" / "supplier.key"),
        "--out",
        str(tmp_path / "p.json"),
        "--purpose",
        "risk_control",
        "--recipient",
        BANK,
        "--state",
        "anonymized",
        "--deid-report",
        str(supply.report),
    )
    assert code == 2 and "refusing to issue 'anonymized'" in out
    assert not (tmp_path / "p.json").exists()


def test_issue_refuses_a_k_the_data_contradicts(supply, tmp_path):
    rep = json.loads(supply.report.read_text())
    rep["models"]["k_anonymity"]["k"] = 50  # the data's smallest class is far below 50
    (tmp_path / "r.json").write_text(json.dumps(rep))
    code, out = run(
        "passport",
        "issue",
        str(supply.delivery),
        "--key",
        str(supply.root / "trusted" / "supplier.key"),
        "--out",
        str(tmp_path / "p.json"),
        "--purpose",
        "risk_control",
        "--recipient",
        BANK,
        "--state",
        "pseudonymized",
        "--deid-report",
        str(tmp_path / "r.json"),
    )
    assert code == 2 and "refusing to claim k=50" in out


def test_issue_refuses_a_state_beyond_the_deid_report(supply, tmp_path):
    # The delivery holds keyed pseudonyms of the phone and ID numbers: linkable, so deid's re-scan declares
    # it pseudonymized, and a passport must not call it anonymized (PIPL Art. 73) although no raw
    # identifier is left in the bytes for a verifier to find.
    assert json.loads(supply.report.read_text())["declared_state"] == "pseudonymized"
    args = [
        "passport", "issue", str(supply.delivery), "--key", str(supply.root / "trusted" / "supplier.key"),
        "--out", str(tmp_path / "p.json"), "--purpose", "risk_control", "--recipient", BANK,
        "--deid-report", str(supply.report),
    ]  # fmt: skip
    code, out = run(*args, "--state", "anonymized")
    assert code == 2, out
    assert "refusing to issue 'anonymized': the de-identification report" in out
    assert "says 'pseudonymized'" in out and "(linkable)" in out
    assert not (tmp_path / "p.json").exists()
    code, out = run(*args, "--state", "pseudonymized")
    assert code == 0, out


def test_record_proof_round_trip(supply, tmp_path):
    proof = tmp_path / "proof.json"
    data = supply.delivery / "loan.deid.csv"
    code, out = run(
        "passport",
        "prove-record",
        str(data),
        "--passport",
        str(supply.passport),
        "--row",
        "42",
        "-o",
        str(proof),
    )
    assert code == 0, out
    assert oct(proof.stat().st_mode & 0o777) == "0o600"
    validate(json.loads(proof.read_text()), "passport-record-proof")
    code, out = run(
        "passport",
        "verify-record",
        str(proof),
        "--passport",
        str(supply.passport),
        "--trust",
        str(supply.trust_path),
    )
    assert code == 0 and "record 42 of loan.deid.csv is included" in out
    doc = json.loads(proof.read_text())
    rec = bytearray(base64.b64decode(doc["recordBase64"]))
    rec[-1] ^= 1
    doc["recordBase64"] = base64.b64encode(bytes(rec)).decode()
    proof.write_text(json.dumps(doc))
    code, out = run(
        "passport",
        "verify-record",
        str(proof),
        "--passport",
        str(supply.passport),
        "--trust",
        str(supply.trust_path),
    )
    assert code == 1 and "proof: record 42" in out
    code, out = run(
        "passport", "prove-record", str(data), "--passport", str(supply.passport), "--row", "999999"
    )
    assert code == 2 and "has records 1 to 3000" in out


def test_keygen_encrypts_with_the_environment_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv("PIGUARD_PASSPHRASE", "correct horse battery staple")
    code, out = run("passport", "keygen", "--out", str(tmp_path / "k"), "--owner", "Acme")
    assert code == 0 and "encrypted" in out
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    assert "correct horse" not in out
    monkeypatch.setenv("PIGUARD_PASSPHRASE", "wrong")
    code, out = run(
        "passport",
        "issue",
        str(APPLICANTS),
        "--key",
        str(tmp_path / "k.key"),
        "--out",
        str(tmp_path / "p.json"),
        "--purpose",
        "risk_control",
        "--recipient",
        "*",
        "--sampled",
    )
    assert code == 2 and "wrong passphrase" in out
    code, out = run("passport", "keygen", "--out", str(tmp_path / "k"))
    assert code == 2 and "already exists" in out


def test_json_and_html_reports_and_the_installed_command(supply, tmp_path):
    code, out = run(*verify_args(supply, supply.delivery, None, "--format", "json"))
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "accept" and doc["id"].startswith("sha256:")
    validate(doc, "passport-verdict")
    case = copy_delivery(supply, tmp_path / "d")
    f = case / "loan.deid.csv"
    lines = f.read_text("utf-8").splitlines(keepends=True)
    lines[5], lines[6] = lines[6], lines[5]
    f.write_text("".join(lines), "utf-8")
    (case / "<script>x.csv").write_text("a\n1\n", "utf-8")
    html = tmp_path / "r.html"
    code, _ = run(*verify_args(supply, case, None, "--format", "html", "-o", str(html)))
    page = html.read_text()
    assert code == 1 and '<h1 class="reject">reject</h1>' in page
    assert "&lt;script&gt;x.csv" in page and "<script>" not in page
    piguard = Path(sys.executable).with_name("piguard")
    if not piguard.exists():
        pytest.fail(f"{piguard} is not installed (run make install)")
    cmd = [str(piguard), *verify_args(supply, case)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and res.stdout.startswith("reject")
    assert "merkle: loan.deid.csv: record 5 is the first that differs" in res.stdout
    assert "Traceback" not in res.stderr


def test_no_raw_value_in_any_rejection(supply, tmp_path):
    """The slipped-in ID and the undeclared phone column are reported masked."""
    case = copy_delivery(supply, tmp_path / "d")
    f = case / "loan.deid.csv"
    lines = f.read_text("utf-8").splitlines(keepends=True)
    cells = lines[17].split(",")
    cells[1] = "110101199003071233"
    lines[17] = ",".join(cells)
    f.write_text("".join(lines), "utf-8")
    with open(APPLICANTS, encoding="utf-8") as fh:
        phones = [r["手机号"] for r in csv.DictReader(fh)]
    (case / "contacts.csv").write_text("电话\n" + "\n".join(phones[:300]) + "\n", "utf-8")
    code, out = run(*verify_args(supply, case))
    assert code == 1
    assert (
        "direct-identifier: loan.deid.csv record 17 column '身份证号' "
        "holds a CN_RESIDENT_ID (1101**********1233)" in out
    )
    assert "extra-file: contacts.csv" in out
    assert "undeclared-pi: contacts.csv column '电话' holds PHONE_NUMBER" in out
    shutil.rmtree(case)


def test_headerless_table_never_shows_a_value_as_a_column_name(supply, tmp_path):
    """Without a header row the first record's values become column names: they are masked too."""
    with open(APPLICANTS, encoding="utf-8") as fh:
        rows = [(r["身份证号"], r["城市"]) for r in csv.DictReader(fh)][:200]
    data = tmp_path / "ids.csv"
    data.write_text("".join(f"{i},{c}\n" for i, c in rows), "utf-8")
    code, out = run(
        "passport", "issue", str(data), "--key", str(supply.root / "trusted" / "supplier.key"), "--out",
        str(tmp_path / "p.json"), "--purpose", "risk_control", "--recipient", "*", "--state", "pseudonymized",
    )  # fmt: skip
    assert code == 2 and "refusing to issue 'pseudonymized'" in out and "**********" in out
