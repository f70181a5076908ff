"""The issue's property: any single-byte change to a data file or to the signed payload, any reordering of
records, any removed or added file is rejected, each with the right reason."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from piguard.keys import TrustStore, generate
from piguard.passport import IssueRequest, VerifyOptions, issue, verify

CSV = "客户编号,城市,金额\n" + "".join(
    f"C{i:04d},{'北京市' if i % 2 else '上海市'},{i * 37 % 1000}\n" for i in range(60)
)
JSONL = "".join(json.dumps({"id": i, "tag": f"t{i % 7}"}) + "\n" for i in range(40))


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    root = tmp_path_factory.mktemp("prop")
    data = root / "data"
    data.mkdir()
    (data / "orders.csv").write_text(CSV, "utf-8")
    (data / "events.jsonl").write_text(JSONL, "utf-8")
    key = generate(root / "issuer", owner="Issuer Co")
    passport = root / "passport.json"
    issue(
        IssueRequest(
            data=[str(data)], key=key, out=str(passport), purposes=["risk_control"], recipients=["*"]
        )
    )
    return root, data, passport, TrustStore([key.public])


def _codes(passport: Path, data: Path, trust: TrustStore) -> set[str]:
    v = verify(str(passport), [str(data)], VerifyOptions(trust=trust, check_claims=False))
    return {r.code for r in v.reasons}


def _fresh(root: Path, data: Path, tag: str) -> Path:
    dest = root / f"case-{tag}"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(data, dest)
    return dest


def test_untouched_delivery_is_accepted(issued):
    _root, data, passport, trust = issued
    assert _codes(passport, data, trust) == set()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from(["orders.csv", "events.jsonl"]),
    pos=st.integers(min_value=0),
    new=st.integers(0, 255),
)
def test_any_byte_change_in_a_data_file_is_rejected(issued, which, pos, new):
    root, data, passport, trust = issued
    case = _fresh(root, data, "byte")
    f = case / which
    raw = bytearray(f.read_bytes())
    pos %= len(raw)
    assume(raw[pos] != new)
    raw[pos] = new
    f.write_bytes(bytes(raw))
    codes = _codes(passport, case, trust)
    assert "digest" in codes
    assert codes <= {"digest", "records", "merkle"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_byte_change_in_the_signed_payload_is_rejected(issued, pos, bit):
    root, _data, passport, trust = issued
    env = json.loads(passport.read_text("utf-8"))
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[pos % len(payload)] ^= 1 << bit
    env["payload"] = base64.b64encode(bytes(payload)).decode("ascii")
    forged = root / "forged.json"
    forged.write_text(json.dumps(env), "utf-8")
    assert _codes(forged, root / "data", trust) == {"signature"}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(perm=st.permutations(list(range(60))))
def test_any_reordering_of_records_is_rejected(issued, perm):
    assume(perm != sorted(perm))
    root, data, passport, trust = issued
    case = _fresh(root, data, "order")
    header, *rows = CSV.splitlines(keepends=True)
    (case / "orders.csv").write_text(header + "".join(rows[i] for i in perm), "utf-8")
    v = verify(str(passport), [str(case)], VerifyOptions(trust=trust, check_claims=False))
    codes = {r.code for r in v.reasons}
    assert codes == {"digest", "merkle"}
    first = next(i for i, j in enumerate(perm) if i != j)
    merkle_reason = next(r for r in v.reasons if r.code == "merkle")
    assert merkle_reason.record == first + 1  # the first moved record is named


def test_removed_and_added_files_are_rejected(issued):
    root, data, passport, trust = issued
    case = _fresh(root, data, "files")
    (case / "events.jsonl").unlink()
    assert _codes(passport, case, trust) == {"missing-file"}
    shutil.copy(data / "events.jsonl", case / "events.jsonl")
    (case / "extra.csv").write_text("a\n1\n", "utf-8")
    assert _codes(passport, case, trust) == {"extra-file"}
    (case / "sub").mkdir()
    shutil.move(case / "extra.csv", case / "sub" / "extra.csv")
    assert _codes(passport, case, trust) == {"extra-file"}
