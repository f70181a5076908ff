"""PSI through SecretFlow's RR22 between two processes, behind piguard's authenticated handshake. Runs where
SecretFlow's ``spu`` is installed: in this interpreter, or in the one ``$PIGUARD_SPU_PYTHON`` names."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from piguard.joint.sf_psi import spu_python

from .conftest import Members, run_cli, write_csv

LAWFUL = ["--purpose", "risk_control", "--legal-basis", "consent", "--consent", "separate"]

pytestmark = pytest.mark.skipif(
    spu_python() is None,
    reason="SecretFlow's spu is not installed (set PIGUARD_SPU_PYTHON to a venv with spu)",
)


@pytest.mark.slow  # several processes (and Paillier or SecretFlow start-up)
def test_rr22_intersection_between_two_processes(tmp_path: Path, members: Members, serve) -> None:
    server = [f"+86 138{i:08d}" for i in range(300)]
    querier = [f"138{i:08d}" for i in range(200, 500)] + ["bad"]
    s = write_csv(tmp_path / "s.csv", "phone", server)
    q = write_csv(tmp_path / "q.csv", "phone", querier)
    srv = serve(
        "psi",
        "serve",
        "--ids",
        str(s),
        "--column",
        "phone",
        "--engine",
        "rr22",
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    out = tmp_path / "m.csv"
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
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["intersection_size"] == 100 and report["invalid_dropped"] == 1
    assert set(pl.read_csv(out, infer_schema=False)["phone"]) == {f"138{i:08d}" for i in range(200, 300)}
    # Cardinality is not what RR22 gives: a named refusal, not a silent intersection.
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
    assert r.returncode == 2 and "--cardinality needs a server on --engine ecdh" in r.stderr
    # An untrusted querier never reaches the SecretFlow link.
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
        str(members.key("mallory")),
        "--trust",
        str(members.trust),
        *LAWFUL,
        "--out",
        str(out),
    )
    assert r.returncode == 2 and "not in the trust store" in r.stderr
