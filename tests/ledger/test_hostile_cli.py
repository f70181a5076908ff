"""Hostile input to the ``consent`` and ``ledger`` verbs: generated arguments (Hypothesis) and the files and
URLs attackers reach for. Every case ends with exit 0 (accepted), 1 (verify found a problem) or 2 (a named
error), never a traceback or an internal error, and no raw identifier or password in anything printed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from piguard.cli import app

runner = CliRunner()
RAW = ("110101199003071233", "13812345678", "zhang.wei@example.com", "11010519491231002X")
SECRET = "s3cret-pw"


def _run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = runner.invoke(app, list(args), input=stdin, env={"PIGUARD_LEDGER_KEY": "", **(env or {})})
    out = res.stdout + res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in out and "internal error" not in out, out
    for raw in (*RAW, SECRET):
        assert raw not in out, f"{raw} printed: {out[:400]}"
    return res.exit_code, out


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("hostile") / "ledger.db")
    code, _ = _run("ledger", "init", "--ledger", path)
    assert code == 0
    code, _ = _run(
        "ledger", "provenance", "ds-1", "--dataset", "d", "--method", "derived", "--legal-basis", "consent",
        "--source", "model", "--ledger", path,
    )  # fmt: skip
    assert code == 0
    return path


_hostile = st.one_of(
    st.sampled_from(RAW),
    st.sampled_from(RAW).map(lambda r: f"s_{r}"),
    st.sampled_from(RAW).map(lambda r: f"id-{r}"),
    st.sampled_from(["separate", "data_supply", "PERSON", "financial", "某银行", "", " ", "-", "--ledger"]),
    st.text(max_size=40).filter(lambda t: "\x00" not in t),
    st.text(min_size=300, max_size=400, alphabet="ab"),
)
_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_settings
@given(kind=_hostile, purpose=_hostile, data=_hostile, cid=_hostile, recipient=_hostile, channel=_hostile)
def test_generated_consent_records(db: str, kind: str, purpose: str, data: str, cid: str, recipient: str,
                                   channel: str) -> None:  # fmt: skip
    code, out = _run(
        "consent", "record", "--subject", "s_" + "ab" * 20, "--kind", kind, "--purpose", purpose,
        "--data", data, "--id", cid, "--recipient", recipient, "--channel", channel, "--ledger", db,
    )  # fmt: skip
    assert code in (0, 2)
    if code == 0:
        assert set(json.loads(out.splitlines()[-1])) == {"consent", "subject"}


@_settings
@given(subject=_hostile)
def test_generated_subjects(db: str, subject: str) -> None:
    code, out = _run(
        "consent", "record", "--subject", subject, "--kind", "separate", "--purpose", "data_supply",
        "--data", "PERSON", "--ledger", db,
    )  # fmt: skip
    assert code == 2 and ("--subject must be a pseudonym" in out or "give --subject" in out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verb=st.sampled_from(["purpose", "provenance", "activity"]), value=_hostile, other=_hostile)
def test_generated_ledger_records(db: str, verb: str, value: str, other: str) -> None:
    args = {
        "purpose": ["purpose", value, "--zh", other, "--en", other, "--data", other],
        "provenance": ["provenance", value, "--dataset", other, "--method", other, "--legal-basis", "consent",
                       "--source", other, "--upstream", other],
        "activity": ["activity", value, "--name", other, "--activity", "use", "--purpose", other,
                     "--data", "PERSON", "--legal-basis", other],
    }[verb]  # fmt: skip
    code, _ = _run("ledger", *args, "--ledger", db)
    assert code in (0, 2)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_hostile)
def test_generated_lookups(db: str, value: str) -> None:
    code, _ = _run("consent", "show", value, "--ledger", db)
    assert code in (0, 2)
    code, _ = _run("consent", "withdraw", value, "--ledger", db)
    assert code in (0, 2)
    code, _ = _run("ledger", "audit", "--object", value, "--ledger", db)
    assert code == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["consent", "show", RAW[0]], "consent '1101**********1233' is not in the ledger"),
        (["consent", "withdraw", RAW[1]], "consent '138****5678' is not in the ledger"),
        (["consent", "show", "--subject", "s_" + RAW[0]], "--subject must be a pseudonym exactly"),
        (["consent", "show", "--subject", "s_" + "ab" * 20, "--subject-id", "x"], "give --subject"),
        (["consent", "show"], "give --subject"),
        (
            ["ledger", "purpose", RAW[1], "--zh", "x", "--en", "x", "--data", "PERSON"],
            "looks like a personal",
        ),
        (
            [
                "ledger",
                "provenance",
                "id-" + RAW[0],
                "--dataset",
                "d",
                "--method",
                "derived",
                "--legal-basis",
                "consent",
                "--source",
                "s",
            ],
            "looks like a personal identifier (CN_RESIDENT_ID)",
        ),
        (
            [
                "ledger",
                "provenance",
                "ds-2",
                "--dataset",
                "d",
                "--method",
                RAW[2],
                "--legal-basis",
                "consent",
                "--source",
                "s",
            ],
            "collection method 'z***@example.com' is not valid",
        ),
        (
            [
                "ledger",
                "provenance",
                "ds-2",
                "--dataset",
                "d",
                "--method",
                "derived",
                "--legal-basis",
                "consent",
                "--source",
                "s",
                "--upstream",
                RAW[0],
            ],
            "not in the ledger: 1101**********1233",
        ),
        (
            [
                "ledger",
                "activity",
                RAW[0],
                "--name",
                "n",
                "--activity",
                "use",
                "--purpose",
                "p",
                "--data",
                "PERSON",
                "--legal-basis",
                "consent",
            ],
            "looks like a personal identifier",
        ),
        (
            ["ledger", "purpose", "p1", "--zh", "x", "--en", "x", "--data", RAW[0]],
            "unknown entity or class '1101",
        ),
        (["ledger", "verify", "--format", RAW[0]], "--format '1101**********1233' is not valid"),
        (["ledger", "checkpoint", "--signing-key", "/nonexistent/k.key"], "does not exist"),
    ],
)
def test_named_hostile_arguments(db: str, args: list[str], words: str) -> None:
    code, out = _run(*args, "--ledger", db)
    assert code == 2 and words in out, out


def test_consent_record_with_a_raw_identifier_on_stdin(db: str) -> None:
    base = ["consent", "record", "--subject-id", "-", "--kind", "separate", "--purpose", "data_supply",
            "--data", "PERSON", "--ledger", db]  # fmt: skip
    code, out = _run(*base, stdin=RAW[0] + "\n")
    assert code == 0 and json.loads(out)["subject"].startswith("s_")
    assert _run(*base, stdin="\n")[1].endswith("empty subject identifier\n")
    code, _ = _run(*base, stdin="x" * 100_000 + "\n")  # read with a cap: a long line is one odd id
    assert code == 0
    code, out = _run(*base[:3], RAW[0], *base[4:])
    assert code == 0 and RAW[0] not in out


@pytest.mark.parametrize("kind", ["fifo", "directory", "missing", "oversized", "device"])
def test_hostile_policy_files(db: str, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "policy.txt"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "oversized":
        with path.open("wb") as fh:
            fh.truncate(17 * 1024 * 1024)
    elif kind == "device":
        path = Path("/dev/zero")
    code, out = _run(
        "consent", "record", "--subject", "s_" + "cd" * 20, "--kind", "separate", "--purpose", "data_supply",
        "--data", "PERSON", "--policy-file", str(path), "--ledger", db,
    )  # fmt: skip
    words = {"fifo": "not a regular file", "directory": "a directory", "missing": "No such file",
             "oversized": "policy file larger than 16 MiB", "device": "not a regular file"}[kind]  # fmt: skip
    assert code == 2 and words in out, out


@pytest.mark.parametrize(
    ("ledger", "words"),
    [
        (
            f"postgresql+psycopg://admin:{SECRET}@127.0.0.1:9/x",
            "cannot open ledger postgresql+psycopg://admin:***@",
        ),
        (f"postgresql+psycopg://admin:p@{SECRET}@127.0.0.1:9/x", "write '@' in a password as %40"),
        (f"mongodb://admin:{SECRET}@db.example/x", "cannot use ledger mongodb://admin:***@db.example/x"),
        ("a\x00b.db", "NUL character"),
        ("/dev/null", "is not a file"),
        ("/", "is not a file"),
        ("/no/such/dir/l.db", "ledger directory /no/such/dir does not exist"),
        ("x" * 5000 + ".db", "cannot use ledger path xxx"),
        ("nope://", "cannot use ledger nope://"),
    ],
)
def test_hostile_ledger_locations(ledger: str, words: str) -> None:
    for args in (["ledger", "verify"], ["ledger", "init"], ["consent", "show", "c1"]):
        code, out = _run(*args, "--ledger", ledger)
        assert code == 2 and words in out, (args, out)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "oversized", "fifo"])
def test_hostile_key_files(db: str, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "k"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"\n")
    elif kind == "oversized":
        path.write_bytes(b"k" * 10_000)
    elif kind == "fifo":
        os.mkfifo(path)
    words = {"missing": "does not exist", "directory": "not a regular file", "empty": "is empty",
             "oversized": "too large to be a key", "fifo": "not a regular file"}[kind]  # fmt: skip
    for args in (["ledger", "verify"], ["consent", "withdraw", "c1"]):
        code, out = _run(*args, "--key-file", str(path), "--ledger", db)
        assert code == 2 and words in out, (args, out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.one_of(
        st.dictionaries(
            st.sampled_from(["format", "seq", "hash", "signer", "signature", "created_at", "ledger"]),
            st.one_of(st.sampled_from([*RAW, "piguard-ledger-checkpoint/1", "0" * 64]), st.integers(),
                      st.text(max_size=20), st.none(), st.lists(st.integers(), max_size=3)),
        ),
        st.lists(st.integers(), max_size=3),
        st.sampled_from(RAW),
    )
)  # fmt: skip
def test_generated_checkpoints(db: str, tmp_path: Path, doc: object) -> None:
    cp, pub = tmp_path / "cp.json", tmp_path / "k.pub"
    cp.write_text(json.dumps(doc), "utf-8")
    if not pub.exists():
        from piguard.keys import generate

        generate(tmp_path / "k")
    code, out = _run("ledger", "verify", "--checkpoint", str(cp), "--trust", str(pub), "--ledger", db)
    assert code == 2 and f"checkpoint {cp}" in out, out
