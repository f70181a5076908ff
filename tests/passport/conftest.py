"""Fixtures for passports: key pairs, and a real delivery made by `piguard deid` from the bundled loan
applicants (3,000 synthetic records), issued once per module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test modules import the helpers by name; with --import-mode=importlib pytest does not put this directory
# on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from passport_data import BANK, Supply, deliver

from piguard.keys import generate, load_trust
from piguard.passport import IssueRequest, issue


@pytest.fixture(scope="module")
def supply(tmp_path_factory: pytest.TempPathFactory) -> Supply:
    root = tmp_path_factory.mktemp("supply")
    delivery, report, cfg = deliver(root)
    (root / "trusted").mkdir()
    supplier = generate(root / "trusted" / "supplier", owner="某数据科技有限公司")
    intruder = generate(root / "intruder", owner="冒名者")
    passport = root / "passport.json"
    issue(
        IssueRequest(
            data=[str(delivery)], key=supplier, out=str(passport),
            purposes=["credit_assessment", "risk_control"], recipients=[BANK], state="pseudonymized",
            deid_report=str(report), deid_config=str(cfg),
        )
    )  # fmt: skip
    trust_path = root / "trusted" / "supplier.pub"
    trust = load_trust(trust_path)
    return Supply(root, delivery, report, cfg, supplier, intruder, trust, trust_path, passport)
