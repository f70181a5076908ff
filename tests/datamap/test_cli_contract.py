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


def _scan_without(module: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.modules[{module!r}] = None; sys.argv = ['piguard', 'scan', *{list(argv)!r}]; "
        "from piguard.cli import main; main()"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_a_missing_driver_or_engine_names_its_extra_in_the_table_report(tmp_path: Path) -> None:
    # The hint was masked as data ("pip install 'p*******'") and Rich ate "[spark]" ("pip install 'piguard'").
    url = "postgresql+psycopg://reader@127.0.0.1:9/crm"
    res = _scan_without("psycopg", url, "--no-progress", cwd=tmp_path)
    assert res.returncode == 3
    assert "pip install 'piguard[db]'" in " ".join(res.stdout.split())
    lake = tmp_path / "lake"
    lake.mkdir()
    customers().write_parquet(lake / "part-0.parquet")
    res = _scan_without("pyspark", str(lake), "--engine", "spark", "--no-progress", cwd=tmp_path)
    assert res.returncode == 3
    assert "pip install 'piguard[spark]'" in " ".join(res.stdout.split())
