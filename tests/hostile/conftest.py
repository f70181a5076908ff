"""Shared helpers of the cross-verb hostile-input suite: run the real ``piguard`` command as a user would
(a child process, under an address-space limit and a timeout) and check what every bad input must give:
the documented exit code, a message naming the input, no traceback, no internal error and no raw
personal value or password anywhere in what was printed.

The fixtures hand out callables (``cli``) and prepared material (keys, a ledger, hostile files), because
with ``--import-mode=importlib`` test modules cannot import this file by name.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Sentinels planted in hostile inputs: none may ever be printed raw.
CN_ID = "110101199003071233"  # a valid resident ID (check digit correct)
PHONE = "13812345678"
PASSWORD = "s3cr3t%2Fpw"
DB_URL = f"postgresql://u:{PASSWORD}@127.0.0.1:1/x"
SENTINELS = (CN_ID, PHONE, "s3cr3t")  # "s3cr3t" catches the encoded and the decoded password

# 2.5 GiB of address space: every verb's normal run (torch included, for `model`) fits under it, and a
# bomb or a runaway read hits MemoryError long before the machine swaps. Spark's JVM does not fit (it
# reserves 1 GiB of class space up front): the one Spark case checks that this failure is named.
MEMORY_LIMIT = int(2.5 * 1024**3)
TIMEOUT = float(os.environ.get("PIGUARD_HOSTILE_TIMEOUT", "60"))
TRACEBACK = "Traceback (most recent call last)"


@dataclass
class Result:
    code: int
    out: str  # stdout and stderr together
    stdout: str
    stderr: str


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_piguard(
    args: Iterable[str | os.PathLike[str] | bytes],
    *,
    stdin: bytes | str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Result:
    """``piguard ARGS`` as a child process; fails the test on a timeout, a traceback, an internal error or
    a sentinel printed raw."""
    cmd: list[str | bytes | os.PathLike[str]] = [
        sys.executable, "-c", "from piguard.cli import main; main()", *args,
    ]  # fmt: skip
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PIGUARD_") and k != "PYTHONPATH"}
    child_env.update(PYTHONPATH=str(SRC), PYTHONUTF8="1", COLUMNS="200", NO_COLOR="1")
    child_env.update(env or {})
    data = stdin.encode() if isinstance(stdin, str) else stdin
    timeout = min(timeout or TIMEOUT, TIMEOUT)
    try:
        proc = subprocess.run(
            cmd, input=data, stdin=None if data is not None else subprocess.DEVNULL, capture_output=True,
            cwd=cwd, env=child_env, timeout=timeout, preexec_fn=_limit_memory,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"piguard {_show(args)} ran past {timeout:.0f} s (a hang)")
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    out = stdout + stderr
    shown = f"piguard {_show(args)} -> {proc.returncode}\n{out[-2000:]}"
    assert TRACEBACK not in out, shown
    assert "internal error" not in out, shown
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {shown}"
    for raw in SENTINELS:
        assert raw not in out, f"{raw!r} printed raw: {shown}"
    return Result(proc.returncode, out, stdout, stderr)


def _show(args: Iterable[object]) -> str:
    # Via bytes: a non-UTF-8 file name (surrogates) must not break the report that shows it.
    text = " ".join(os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args)[:300]
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def expect(result: Result, codes: int | tuple[int, ...], *names: str) -> None:
    """The exit code is one of ``codes`` and every one of ``names`` (any case) appears in the output."""
    wanted = (codes,) if isinstance(codes, int) else codes
    assert result.code in wanted, f"exit {result.code}, expected {wanted}:\n{result.out[-2000:]}"
    low = result.out.lower()
    for name in names:
        assert name.lower() in low, f"{name!r} not named:\n{result.out[-2000:]}"


@pytest.fixture(scope="session")
def cli() -> Callable[..., Result]:
    return run_piguard


# --- Hostile files -------------------------------------------------------------------------------------

PLANTED = f"name,id,phone\n张伟,{CN_ID},{PHONE}\n"


def _yaml_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}]" for i in range(1, 10)]  # fmt: skip
    return "\n".join(lines) + "\nflows: *a9\n"


def make_hostile(kind: str, where: Path, suffix: str = ".txt") -> Path:
    """One hostile input of ``kind`` under ``where`` (a file, a FIFO, a directory or a missing path), each
    carrying the sentinels where its kind allows."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"hostile-{kind}{suffix}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 8 + CN_ID.encode() + b"\x00\xff" * 512 + PHONE.encode())
    elif kind == "bad-utf8":
        path.write_bytes(b"name,id\n\xe5\xbc\xa0\xff\xfe," + CN_ID.encode() + b"\n\xe4\xbc," + PHONE.encode())
    elif kind == "truncated-utf8":
        path.write_bytes(("张伟 " + CN_ID + " 手机").encode()[:-1])
    elif kind == "bom":
        path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf\xff\xfe" + PLANTED.encode("utf-16-le"))
    elif kind == "huge-line":
        path.write_bytes(b"a" * (8 * 1024 * 1024) + b" " + CN_ID.encode() + b"\n")
    elif kind == "nested-json":
        path.write_text("[" * 100_000 + json.dumps(CN_ID) + "]" * 100_000)
    elif kind == "ragged-csv":
        path.write_text(f'a,b,c\n1,"2\n{CN_ID},"x"y",,,,,\n"unterminated,{PHONE}\n')
    elif kind == "bigint-json":
        path.write_text('{"payload": ' + "9" * 5000 + ', "id": "' + CN_ID + '"}')
    elif kind == "yaml-bomb":
        path.write_text(_yaml_bomb())
    elif kind == "bigint":
        path.write_text("version: " + "9" * 5000 + "\nflows:\n  - id: " + "1" * 5000 + "\n")
    elif kind == "gzip-bomb":
        path = where / f"hostile-{kind}{suffix}.gz"
        with gzip.open(path, "wb", compresslevel=1) as fh:
            fh.write(PLANTED.encode())
            chunk = b"\x00" * (1024 * 1024)
            for _ in range(300):  # 300 MiB inflated, ~300 KiB on disk
                fh.write(chunk)
    elif kind == "fifo":
        os.mkfifo(path)  # nobody ever writes to it: reading it would hang
    elif kind == "directory":
        path.mkdir()
        (path / "inner.txt").write_text("no personal data here\n")
    elif kind == "missing":
        path = where / "no-such-dir" / f"missing{suffix}"
    elif kind == "non-utf8-name":
        path = Path(os.fsdecode(bytes(where) + b"/bad-\xff\xfe-name" + suffix.encode()))
        path.write_text(PLANTED)
    elif kind == "not-zip":
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 26 + CN_ID.encode())
    elif kind == "truncated-zip":
        full = where / f"full-{kind}.zip"
        with zipfile.ZipFile(full, "w") as zf:
            zf.writestr("AndroidManifest.xml", b"\x03\x00\x08\x00" + b"\x00" * 4000)
            zf.writestr("classes.dex", b"dex\n035\x00" + b"\x00" * 4000)
        path.write_bytes(full.read_bytes()[:-200])
    elif kind == "zip-not-apk":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", PLANTED)
    else:
        raise ValueError(kind)
    return path


@pytest.fixture(scope="session")
def make_hostile_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """``make_hostile_file(kind, suffix)``: made once per session (a bomb takes a second to build)."""
    made: dict[tuple[str, str], Path] = {}

    def make(kind: str, suffix: str) -> Path:
        if (kind, suffix) not in made:
            made[kind, suffix] = make_hostile(kind, tmp_path_factory.mktemp(f"file-{kind}"), suffix)
        return made[kind, suffix]

    return make


# --- Keys, a ledger, a passport: the valid material hostile cases tamper with ----------------------------


@dataclass
class Material:
    root: Path
    key: Path  # private key, NAME.key
    pub: Path
    other_pub: Path  # a key that signed nothing
    trust_dir: Path  # holds only pub
    ledger: Path
    data: Path  # a small CSV carrying the sentinels
    passport: Path
    flows: Path  # a valid flows file
    clean: Path  # a text file without personal data


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    root = tmp_path_factory.mktemp("material")
    for name in ("issuer", "other"):
        res = run_piguard(["passport", "keygen", "--out", root / name, "--owner", name])
        assert res.code == 0, res.out
    trust = root / "trust"
    trust.mkdir()
    (trust / "issuer.pub").write_bytes((root / "issuer.pub").read_bytes())
    ledger = root / "ledger.db"
    assert run_piguard(["ledger", "init", "--ledger", ledger]).code == 0
    data = root / "data.csv"
    data.write_text(PLANTED * 3)
    passport = root / "passport.json"
    res = run_piguard([
        "passport", "issue", data, "--key", root / "issuer.key", "--out", passport,
        "--purpose", "risk_control",
        "--recipient", "*", "--issuer", "ACME",
    ])  # fmt: skip
    assert res.code == 0, res.out
    flows = root / "flows.yaml"
    flows.write_text(FLOWS)
    clean = root / "clean.txt"
    clean.write_text("nothing personal here\n")
    return Material(root, root / "issuer.key", root / "issuer.pub", root / "other.pub", trust, ledger, data,
                    passport, flows, clean)  # fmt: skip


FLOWS = """controller: ACME
app_type: 12
flows:
  - id: sms-gateway
    activity: provide
    data: [PHONE_NUMBER]
    purpose: loan_servicing
    legal_basis: contract
    recipient: {kind: processor, name: SMS Co}
    entrustment_contract: true
    impact_assessment: true
"""


@pytest.fixture(scope="session")
def expect_fn() -> Callable[..., None]:
    return expect


@pytest.fixture(scope="session")
def hostile_values(material: Material, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Placeholders of the argument table: valid material and a few prepared hostile files."""
    root = tmp_path_factory.mktemp("values")
    garbage = root / "garbage.bin"
    garbage.write_bytes(b"\x00\xffPK" + CN_ID.encode() + bytes(range(256)))
    fifo = root / "fifo"
    os.mkfifo(fifo)
    robots = root / "robots.txt"
    robots.write_text("User-agent: *\nDisallow: /private\n")
    ids = root / "ids.csv"
    ids.write_text(f"id,y,f1\n{CN_ID},1,0.5\n110101199003070011,0,0.1\n")
    tampered = root / "tampered.csv"
    tampered.write_text(material.data.read_text().replace("张伟", "李四", 1))
    envelope = json.loads(material.passport.read_text())
    payload = envelope.get("payload", "")
    tampered_passport = root / "tampered-passport.json"
    # Flip one character of the signed payload: the signature no longer covers it.
    envelope["payload"] = payload[:40] + ("A" if payload[40:41] != "A" else "B") + payload[41:]
    tampered_passport.write_text(json.dumps(envelope))
    truncated = root / "truncated-passport.json"
    truncated.write_text(material.passport.read_text()[:200])
    apk_dir = root / "apks"
    for kind in ("not-zip", "truncated-zip", "zip-not-apk"):
        make_hostile(kind, apk_dir, ".apk")
    return {
        "key": str(material.key), "pub": str(material.pub), "other_pub": str(material.other_pub),
        "trust": str(material.trust_dir), "ledger": str(material.ledger), "data": str(material.data),
        "passport": str(material.passport), "flows": str(material.flows), "clean": str(material.clean),
        "keybase": str(material.key.with_suffix("")), "garbage": str(garbage), "fifo": str(fifo),
        "robots": str(robots), "ids": str(ids), "tampered_data": str(tampered),
        "tampered_passport": str(tampered_passport), "truncated_passport": str(truncated),
        "yaml_bomb": str(make_hostile("yaml-bomb", root, ".yaml")),
        "not_zip": str(apk_dir / "hostile-not-zip.apk"),
        "truncated_zip": str(apk_dir / "hostile-truncated-zip.apk"),
        "zip_not_apk": str(apk_dir / "hostile-zip-not-apk.apk"), "apk_dir": str(apk_dir),
    }  # fmt: skip
