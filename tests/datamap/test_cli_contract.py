"""`piguard scan TABLE --format json` carries the data map under "sources" with the contract keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from datamap_data import EXPECTED, customers, verdicts

KEYS = [
    "source",
    "table",
    "column",
    "entity",
    "share",
    "rows_scanned",
    "sensitive",
    "confidence",
    "examples_masked",
]


def test_scan_json_contract(tmp_path: Path) -> None:
    p = tmp_path / "crm.parquet"
    df = customers()
    df.write_parquet(p)
    res = subprocess.run(
        [str(Path(sys.executable).parent / "piguard"), "scan", str(p), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode in (0, 3), res.stderr[-2000:]
    doc = json.loads(res.stdout)
    rows = doc["sources"]
    assert all(list(r) == KEYS for r in rows)
    assert verdicts(rows) == EXPECTED
    for raw in df.get_column("sfzh").to_list() + df.get_column("col7").to_list():
        assert raw not in res.stdout
