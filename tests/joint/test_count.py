"""Consortium count across real processes: two members and an aggregator, queried by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from .conftest import Members, run_cli, write_csv

LAWFUL = ["--purpose", "risk_control", "--legal-basis", "consent", "--consent", "separate"]


@pytest.mark.slow  # several processes (and Paillier or SecretFlow start-up)
def test_counts_per_applicant_across_members(tmp_path: Path, members: Members, serve) -> None:
    roster = tmp_path / "roster"
    roster.mkdir()
    for name in ("provider", "lender2"):
        (roster / f"{name}.pub").write_text((members.trust / f"{name}.pub").read_text())
    a = [f"138{i:08d}" for i in range(0, 30)]  # provider's open loans
    b = [f"138{i:08d}" for i in range(20, 50)]  # lender2's
    m1 = serve(
        "count",
        "serve",
        "--ids",
        str(write_csv(tmp_path / "a.csv", "phone", a)),
        "--column",
        "phone",
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    m2 = serve(
        "count",
        "serve",
        "--ids",
        str(write_csv(tmp_path / "b.csv", "phone", b)),
        "--column",
        "phone",
        "--key",
        str(members.key("lender2")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    agg = serve(
        "count",
        "aggregate",
        "--roster",
        str(roster),
        "--key",
        str(members.key("aggregator")),
        "--trust",
        str(members.trust),
        "--purpose",
        "risk_control",
        "--legal-basis",
        "consent",
    )
    applicants = ["13800000005", "13800000025", "13800000045", "13900000000", "bad"]
    q = write_csv(tmp_path / "applicants.csv", "phone", applicants)
    out = tmp_path / "counts.csv"
    common = [
        "--aggregator",
        agg.url,
        "--member",
        m1.url,
        "--member",
        m2.url,
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    ]
    r = run_cli("joint", "count", "query", "--ids", str(q), "--column", "phone", "--out", str(out), *common)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["members"] == 2 and report["invalid_dropped"] == 1
    rows = pl.read_csv(out, infer_schema=False)
    assert rows["members_holding"].to_list() == ["1", "2", "1", "0", None]
    # A single applicant from stdin: only the count comes back.
    import subprocess

    from .conftest import PIGUARD

    one = subprocess.run(
        [*PIGUARD, "joint", "count", "query", "--applicant", "-", *common],
        input="138 0000 0025\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["members_holding"] == 2
    # Neither member nor the aggregator logged an identifier.
    for srv in (m1, m2, agg):
        assert "1380000" not in srv.log()


def test_a_subset_of_members_is_refused(tmp_path: Path, members: Members, serve) -> None:
    roster = tmp_path / "roster"
    roster.mkdir()
    for name in ("provider", "lender2"):
        (roster / f"{name}.pub").write_text((members.trust / f"{name}.pub").read_text())
    m1 = serve(
        "count",
        "serve",
        "--ids",
        str(write_csv(tmp_path / "a.csv", "phone", ["13800000001"])),
        "--column",
        "phone",
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    agg = serve(
        "count",
        "aggregate",
        "--roster",
        str(roster),
        "--key",
        str(members.key("aggregator")),
        "--trust",
        str(members.trust),
        "--purpose",
        "risk_control",
        "--legal-basis",
        "consent",
    )
    # Asking one member alone would turn its count into that member's yes/no: the aggregator refuses.
    r = run_cli(
        "joint",
        "count",
        "query",
        "--applicant",
        "13800000001",
        "--aggregator",
        agg.url,
        "--member",
        m1.url,
        "--key",
        str(members.key("bank")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    assert r.returncode == 2
    assert "members missing from this query: lender2" in r.stderr
