"""Every verb that reads a file, given every kind of hostile file where it expects one.

Each verb's expectation says which exit codes are its documented answer to a file it cannot use, and
whether the message must name the file (a verb that reads a file as data, such as ``scan``, may instead
accept it and find nothing, which is also a documented answer).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Every verb gets these: nothing to read, or reading would block forever.
COMMON = ("fifo", "directory", "missing")
# And the traps of the format it reads (empty, binary and non-UTF-8 names where its reader differs).
EXTRA = {
    "check": ("empty", "binary", "non-utf8-name", "yaml-bomb", "bigint", "nested-json", "bad-utf8", "bom"),
    "check --trust": ("empty", "binary"),
    "deid": ("empty", "binary", "non-utf8-name", "ragged-csv", "bad-utf8", "huge-line", "gzip-bomb", "bom"),
    "deid --config": ("empty", "binary", "yaml-bomb", "bigint", "nested-json"),
    "robots": ("empty", "binary", "non-utf8-name", "huge-line", "bad-utf8"),
    "app audit": ("empty", "binary", "non-utf8-name"),
    "passport verify --passport": ("empty", "binary", "nested-json", "truncated-utf8", "bigint-json"),
    "passport verify-record": ("empty", "nested-json", "bigint-json"),
    "rights verify-receipt": ("empty", "binary", "nested-json", "bigint-json"),
    "model show": ("empty",),
    "scan --detectors": ("empty", "binary", "yaml-bomb", "bigint", "nested-json"),
    "ledger verify --checkpoint": ("empty", "nested-json", "bigint-json"),
    "consent record --policy-file": ("binary",),
    "passport issue --deid-report": ("empty", "nested-json", "bigint-json"),
    "joint psi query --ids": ("empty", "binary", "non-utf8-name", "ragged-csv", "bad-utf8", "huge-line",
                              "gzip-bomb"),
}  # fmt: skip

Args = Callable[[Path, Any, Path], list[object]]
SUBJECT = "s_" + "ab" * 20
JOINT = ["--purpose", "risk_control", "--legal-basis", "consent", "--consent", "separate"]


def _joint(p: Path, m: Any, t: Path) -> list[object]:
    return ["joint", "psi", "query", "http://127.0.0.1:1", "--ids", p, "--column", "id", "--key", m.key,
            "--trust", m.trust_dir, *JOINT, "--out", t / "o.csv"]  # fmt: skip


def _consent(p: Path, m: Any, t: Path) -> list[object]:
    return ["consent", "record", "--subject", SUBJECT, "--kind", "separate", "--purpose", "risk_control",
            "--data", "PERSON", "--ledger", m.ledger, "--policy-file", p]  # fmt: skip


def _issue(p: Path, m: Any, t: Path) -> list[object]:
    return ["passport", "issue", m.data, "--key", m.key, "--out", t / "p.json", "--purpose", "risk_control",
            "--recipient", "*", "--deid-report", p, "--state", "anonymized"]  # fmt: skip


# verb -> (argv builder, suffix of the hostile file, exit codes for an unusable file)
VERBS: dict[str, tuple[Args, str, tuple[int, ...]]] = {
    "check": (lambda p, m, t: ["check", p], ".yaml", (2,)),
    "check --trust": (lambda p, m, t: ["check", m.flows, "--trust", p], ".pub", (2,)),
    "deid": (lambda p, m, t: ["deid", p, "--quasi", "id", "--k", "2", "-o", t / "o.csv"], ".csv", (2,)),
    "deid --config": (lambda p, m, t: ["deid", m.data, "-c", p, "-o", t / "o.csv"], ".yaml", (2,)),
    "robots": (lambda p, m, t: ["robots", p, "bot", "https://example.com/x"], ".txt", (0, 2)),
    "app audit": (lambda p, m, t: ["app", "audit", p], ".apk", (2,)),
    "passport verify --passport": (
        lambda p, m, t: ["passport", "verify", m.data, "--passport", p, "--trust", m.trust_dir],
        ".json",
        (2,),
    ),
    "passport verify-record": (
        lambda p, m, t: ["passport", "verify-record", p, "--passport", m.passport, "--trust", m.trust_dir],
        ".json",
        (2,),
    ),
    "rights verify-receipt": (lambda p, m, t: ["rights", "verify-receipt", p, "--key", m.pub], ".json", (2,)),
    "model show": (lambda p, m, t: ["model", "show", p], "", (2,)),
    "scan --detectors": (lambda p, m, t: ["scan", m.clean, "--detectors", p], ".yaml", (2,)),
    "ledger verify --checkpoint": (
        lambda p, m, t: ["ledger", "verify", "--ledger", m.ledger, "--checkpoint", p, "--trust", m.pub],
        ".json",
        (2,),
    ),
    "consent record --policy-file": (_consent, ".txt", (0, 2)),  # any bytes are a policy text: hashed
    "passport issue --deid-report": (_issue, ".json", (2,)),
    "joint psi query --ids": (_joint, ".csv", (2,)),
}


# Files a verb reads on purpose (lossy UTF-8, ragged rows): it goes on and stops later for another reason
# (here: the partner at 127.0.0.1:1 cannot be reached), so its message names that instead.
READABLE = {("joint psi query --ids", k) for k in ("bad-utf8", "ragged-csv", "non-utf8-name")}


def shown_name(path: Path) -> str:
    """What a message naming ``path`` surely holds: its name, up to a byte that is not UTF-8."""
    return path.name.split("\udcff")[0]


CASES = [(verb, kind) for verb in VERBS for kind in COMMON + EXTRA.get(verb, ())]


@pytest.mark.parametrize(("verb", "kind"), CASES, ids=[f"{v}-{k}" for v, k in CASES])
def test_hostile_file(cli, material, make_hostile_file, tmp_path: Path, verb: str, kind: str) -> None:
    build, suffix, codes = VERBS[verb]
    path = make_hostile_file(kind, suffix)
    res = cli(build(path, material, tmp_path))
    if kind == "empty" and verb in ("deid --config", "robots", "consent record --policy-file"):
        codes = (0, 2)  # an empty config, robots.txt or policy text is a valid (empty) one
    if kind in ("fifo", "directory", "missing"):
        codes = tuple(c for c in codes if c != 0)  # nothing to read: never a success
    assert res.code in codes, f"exit {res.code}, expected {codes}:\n{res.out[-2000:]}"
    if res.code != 0 and (verb, kind) not in READABLE:
        assert shown_name(path) in res.out, f"{path.name!r} not named:\n{res.out[-2000:]}"


# ``scan`` reads files as data: it goes on past one it cannot read and says so (exit 3), or reads it and
# finds what it finds (0); either way the planted values never appear raw.
SCAN_KINDS = ("binary", "bad-utf8", "bom", "huge-line", "gzip-bomb", "fifo", "non-utf8-name")


@pytest.mark.parametrize("kind", SCAN_KINDS)
def test_scan_goes_on_past_a_bad_file(cli, material, make_hostile_file, kind: str) -> None:
    path = make_hostile_file(kind, ".csv")
    res = cli(["scan", material.clean, path, "-f", "json", "--no-progress", "--max-decompressed", "50M"])
    assert res.code in (0, 3), res.out[-2000:]
    if res.code == 3:
        assert shown_name(path) in res.out, res.out[-2000:]
