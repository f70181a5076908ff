"""Hostile flows files through ``piguard check``: every case ends with exit 0, 1 or 2, a named error (file
and, where there is one, line), no traceback or internal error, no raw identifier in anything printed, and
bounded time and memory. Hypothesis generates documents; the named cases are the ones attackers reach for."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from piguard.cli import app
from piguard.rules import FlowsError, parse_flows

runner = CliRunner()
# Raw identifiers that validate (so the detectors recognise them) and must never be printed as they are.
RAW = ("110101199003071233", "13812345678", "zhang.wei@example.com", "11010519491231002X")
VALID_FLOW = {
    "id": "f1", "activity": "use", "data": ["PHONE_NUMBER"], "purpose": "account_registration",
    "legal_basis": "consent", "consent": {"kind": "explicit"},
}  # fmt: skip


def _check(path: Path, *extra: str) -> tuple[int, str]:
    res = runner.invoke(app, ["check", str(path), *extra], env={"PIGUARD_LEDGER": ""})
    out = res.stdout + res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in out and "internal error" not in out
    return res.exit_code, out


def _assert_masked(out: str) -> None:
    for raw in RAW:
        assert raw not in out, f"raw value {raw} printed: {out[:500]}"


# ---- generated documents ----------------------------------------------------------------------------------
_scalars = st.one_of(
    st.sampled_from(RAW),
    st.sampled_from(
        ["use", "provide", "PERSON", "financial", "consent", "separate", "marketing", "true", ""]
    ),
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)
_keys = st.one_of(
    st.sampled_from(["id", "activity", "data", "purpose", "consent", "recipient", "retention", "source",
                     "kind", "ref", "subject", "name", "days", "until", "legal_basis", "flows"]),
    st.sampled_from(RAW),
    st.text(max_size=12),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=25,
)
_flow = st.dictionaries(_keys, _values, max_size=8).map(lambda d: {**VALID_FLOW, **d})
_doc = st.one_of(
    st.fixed_dictionaries(
        {"controller": st.one_of(st.just("某公司"), _scalars), "flows": st.lists(_flow, max_size=4)},
        optional={"app_type": _values, "app": _values, "version": _values},
    ),
    _values,
)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_doc)
def test_generated_flows_documents(doc: object, tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    code, out = _check(path, "-f", "json")
    assert code in (0, 1, 2)
    if code == 2:
        assert f"{path}" in out  # the error names the file
        _assert_masked(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_generated_bytes(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_bytes(data)
    code, _out = _check(path)
    assert code in (0, 1, 2)


@settings(max_examples=60, deadline=None)
@given(raw=st.sampled_from(RAW), where=st.sampled_from(["id", "activity", "data", "purpose", "key",
                                                         "subject", "app_type", "days"]))  # fmt: skip
def test_raw_values_in_any_position_are_masked_in_errors(raw: str, where: str) -> None:
    flow = dict(VALID_FLOW)
    doc: dict = {"controller": "某公司", "flows": [flow]}
    if where == "id":
        flow.update(id=raw, activity="sell")  # a valid id is quoted in the error about the activity
    elif where == "key":
        flow[raw] = 1
    elif where == "subject":
        flow["consent"] = {where: raw}
    elif where == "app_type":
        doc["app_type"] = raw
    elif where == "days":
        flow["retention"] = {"days": raw}
    else:
        flow[where] = raw
    with pytest.raises(FlowsError) as exc:
        parse_flows(yaml.safe_dump(doc, allow_unicode=True), "f.yaml")
    text = "\n".join(exc.value.errors)
    assert raw not in text and "f.yaml:" in text


# ---- named cases ------------------------------------------------------------------------------------------
def _bomb(levels: int, width: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return (
        "\n".join(lines)
        + f"\ncontroller: x\nflows: [{{id: 1, activity: use, data: *a{levels - 1}, purpose: x}}]\n"
    )


NAMED: dict[str, tuple[bytes, str]] = {
    "alias bomb 9x9": (_bomb(9, 9).encode(), "YAML aliases add more than 100,000 values"),
    "alias bomb 4x40": (_bomb(4, 40).encode(), "more than 100 YAML aliases"),
    "alias bomb wide": (
        b"a: &a [" + b",".join([b"x"] * 5000) + b"]\nb: [" + b",".join([b"*a"] * 50) + b"]\n",
        "YAML aliases add more than 100,000 values",
    ),
    "recursive alias": (b"a: &a [*a]\n", "recursive YAML alias"),
    "recursive mapping": (b"a: &a {b: *a}\n", "recursive YAML alias"),
    "5,000-digit integer": (
        b"controller: x\nflows: [{id: 1, days: " + b"9" * 5000 + b"}]\n",
        "a number of 5000",
    ),
    "5,000-digit hex": (b"x: 0x" + b"f" * 5000 + b"\n", "a number of 5002 characters"),
    "huge float": (b"controller: x\nflows: [{id: 1e99999}]\n", ""),
    "impossible date": (
        b"controller: x\nflows: [{id: 1, retention: {until: 2026-02-30}}]\n",
        ":2: not a valid date",
    ),
    "python object tag": (b"a: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
    "bad binary": (b"a: !!binary 'abc'\n", "malformed YAML: failed to decode base64"),
    "duplicate key": (b"controller: x\ncontroller: y\n", "duplicate key"),
    "mapping key": (b"? {a: 1}\n: 2\n", "a mapping key must be a scalar"),
    "deep nesting": (b"x: " + b"[" * 20000 + b"]" * 20000 + b"\n", "malformed YAML"),
    "deep mappings": (b"x: " + b"{a: " * 3000 + b"1" + b"}" * 3000 + b"\n", ""),
    "two documents": (b"controller: x\n---\ncontroller: y\n", "malformed YAML"),
    "top-level list": (b"- 1\n- 2\n", "expected a mapping"),
    "top-level scalar": (b"110101199003071233\n", "expected a mapping"),
    "empty": (b"", "expected a mapping"),
    "only comments": (b"# nothing\n", "expected a mapping"),
    "NUL bytes": (b"controller: x\x00\nflows: []\n", "malformed YAML"),
    "UTF-16": ("controller: x\n".encode("utf-16"), "not UTF-8"),
    "latin-1": ("controller: café\n".encode("latin-1"), "not UTF-8"),
    "binary": (bytes(range(256)) * 4, "not UTF-8"),
    "tab indentation": (b"controller: x\nflows:\n\t- id: 1\n", "malformed YAML"),
    "unclosed quote": (b'controller: "x\n', "malformed YAML"),
    "long value": (b"controller: x\nflows: [{id: 1, activity: " + b"a" * 1_000_000 + b"}]\n", "characters)"),
    "long raw ID key": (
        b"controller: x\nflows: [{110101199003071233: 1, id: 1}]\n",
        "unknown key 1101**********1233",
    ),
    "raw ID flow id": (b"controller: x\nflows: [{id: 13812345678, activity: sell}]\n", "flow '138****5678'"),
    "subject raw ID": (
        b"controller: x\nflows: [{id: f, activity: use, data: [PERSON], purpose: payment, "
        b"consent: {subject: s_110101199003071233}}]\n",
        "expected a subject pseudonym",
    ),
    "bool as id": (b"controller: x\nflows: [{id: true, activity: use}]\n", "missing or invalid 'id'"),
    "merge key": (
        b"base: &b {activity: use, data: [PERSON], purpose: payment, legal_basis: contract}\n"
        b"controller: x\nflows: [{<<: *b, id: f1}]\n",
        "unknown key 'base'",
    ),
    "CRLF and BOM": ("\ufeffcontroller: x\r\nflows: []\r\n".encode(), "missing 'flows'"),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_hostile_files(name: str, tmp_path: Path) -> None:
    content, words = NAMED[name]
    path = tmp_path / "flows.yaml"
    path.write_bytes(content)
    code, out = _check(path)
    assert code == 2, out[:500]
    assert words in out and str(path) in out, out[:500]
    _assert_masked(out)
    assert len(out) < 20_000  # a hostile value is cut, not echoed whole


def test_files_that_are_not_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    cases = {
        fifo: "not a regular file",  # opening a FIFO to read would block forever
        tmp_path: "a directory",
        tmp_path / "missing.yaml": "cannot read flows file (No such file or directory)",
        Path("/dev/zero"): "not a regular file",
    }
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    cases[loop] = "cannot read flows file"
    for path, words in cases.items():
        code, out = _check(path)
        assert code == 2 and words in out, (path, out)


def test_an_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:  # sparse: 17 MiB on paper, nothing on disk
        fh.truncate(17 * 1024 * 1024)
    code, out = _check(path)
    assert code == 2 and "flows file larger than 16 MiB" in out


def test_report_is_written_atomically_and_never_over_the_input(tmp_path: Path) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(yaml.safe_dump({"controller": "x", "flows": [VALID_FLOW]}), "utf-8")
    report = tmp_path / "report.json"
    code, out = _check(flows, "-f", "json", "-o", str(report))
    assert code in (0, 1) and report.read_text().startswith("{")
    good = report.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("controller: [\n", "utf-8")
    code, out = _check(bad, "-f", "json", "-o", str(report))
    assert code == 2 and report.read_bytes() == good  # a failed run keeps the last good report
    code, out = _check(flows, "-f", "json", "-o", str(flows))
    assert code == 2 and "is the flows file itself" in out and flows.read_text().startswith("controller")
    code, out = _check(flows, "-o", str(tmp_path / "no" / "dir" / "r.txt"))
    assert code == 2 and "does not exist" in out
    code, out = _check(flows, "-o", str(tmp_path))
    assert code == 2 and "cannot write" in out
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--format", "110101199003071233"], "--format '1101**********1233' is not valid"),
        (["--fail-on", "13812345678"], "--fail-on '138****5678' is not valid"),
        (["--format", "x" * 10_000], "is not valid"),
        (["--ledger", "postgresql+psycopg://u:p@ss@127.0.0.1:9/x"], "write '@' in a password as %40"),
        (["--ledger", "mongodb://admin:s3cret@db.example/x"], "cannot use ledger mongodb://admin:***@"),
        (["--ledger", "a\x00b"], "NUL character"),
    ],
)
def test_hostile_arguments(args: list[str], words: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(yaml.safe_dump({"controller": "x", "flows": [VALID_FLOW]}), "utf-8")
    code, out = _check(flows, *args)
    assert code == 2 and words in out, out
    _assert_masked(out)
    assert "s3cret" not in out and "ss@127" not in out


def _limited(cmd: list[str], mem_bytes: int) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))

    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=limit)


@pytest.mark.parametrize("name", ["alias bomb 9x9", "deep nesting", "long value"])
def test_bounded_memory_and_time_under_ulimit(name: str, tmp_path: Path) -> None:
    """A separate process under a 2 GiB address-space limit: wave 1 took 2.9 GB on a 1.6 KB alias bomb."""
    path = tmp_path / "flows.yaml"
    path.write_bytes(NAMED[name][0])
    res = _limited(
        [sys.executable, "-c", "from piguard.cli import main; main()", "check", str(path)], 2 << 30
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert NAMED[name][1] in res.stderr and "Traceback" not in res.stderr


@settings(max_examples=200, deadline=None)
@given(
    raw=st.sampled_from(RAW),
    before=st.one_of(st.text(max_size=50), st.integers(0, 4100).map(lambda n: "x" * n)),
    after=st.text(max_size=50),
)
def test_mask_message_never_lets_an_identifier_through(raw: str, before: str, after: str) -> None:
    """Wherever the identifier sits -- inside words, across the length cut -- it never comes out whole."""
    from piguard.detect.messages import mask_message

    out = mask_message(f"{before} {raw} {after}")
    assert raw not in out and len(out) <= 4100
