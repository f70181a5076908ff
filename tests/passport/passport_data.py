"""Helpers for the passport tests: key pairs, and a real delivery made by `piguard deid` from the bundled loan
applicants (3,000 synthetic records), issued once per module."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from piguard.deid import deidentify, load_config, read_table, write_table_atomic
from piguard.keys import SigningKey, TrustStore

REPO = Path(__file__).resolve().parents[2]
APPLICANTS = REPO / "examples" / "data" / "loan_applicants.csv"
DEID_CONFIG = REPO / "examples" / "deid" / "loan_applicants.yaml"
BANK = "某商业银行股份有限公司"


@dataclass
class Supply:
    root: Path
    delivery: Path  # directory holding the delivered file
    report: Path
    config: Path
    supplier: SigningKey
    intruder: SigningKey
    trust: TrustStore
    trust_path: Path
    passport: Path


def deliver(root: Path) -> tuple[Path, Path, Path]:
    """De-identify the applicants with the example config (fresh keys): delivery/loan.deid.csv + report."""
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for col in ("手机号", "身份证号"):
        (keys / f"{col}.key").write_text(secrets.token_hex(32))
    cfg_path = root / "deid.yaml"
    shutil.copy(DEID_CONFIG, cfg_path)
    cfg = load_config(cfg_path)
    df, fmt = read_table(APPLICANTS)
    outcome = deidentify(df, cfg)
    delivery = root / "delivery"
    delivery.mkdir()
    write_table_atomic(outcome.table, delivery / "loan.deid.csv", fmt)
    report = root / "deid-report.json"
    import json

    report.write_text(json.dumps(outcome.report, ensure_ascii=False), "utf-8")
    return delivery, report, cfg_path


def copy_delivery(supply: Supply, dest: Path) -> Path:
    shutil.copytree(supply.delivery, dest)
    return dest


def validate(doc: object, schema_name: str) -> None:
    """Validate ``doc`` against one of piguard's published schemas (src/piguard/schemas)."""
    import json
    from importlib import resources

    import jsonschema

    text = resources.files("piguard.schemas").joinpath(f"{schema_name}.schema.json").read_text("utf-8")
    jsonschema.Draft202012Validator(json.loads(text)).validate(doc)
