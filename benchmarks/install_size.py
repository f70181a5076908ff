"""Installed size of the core and of `[all]`, each in a fresh virtual environment.

    .venv/bin/python benchmarks/install_size.py     # writes benchmarks/results/install_size.json

Sizes are of the whole venv (site-packages and all), as a new user's disk sees them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "install_size.json"


def du_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return round(total / 1e6, 1)


def measure(spec: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="piguard-size-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        base = du_mb(venv)
        t0 = time.monotonic()
        # A regular (non-editable) install of this checkout, as from a wheel.
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", spec], check=True, cwd=ROOT)
        took = time.monotonic() - t0
        return {
            "spec": spec,
            "venv_mb": du_mb(venv),
            "empty_venv_mb": base,
            "install_seconds": round(took, 1),
        }


def main() -> None:
    results = {
        "core": measure("."),
        "all": measure(".[all]"),
        "python": sys.version.split()[0],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "command": "benchmarks/install_size.py",
    }
    for k in ("core", "all"):
        part = results[k]
        assert isinstance(part, dict)
        print(f"{k:5s} {part['venv_mb']:8.1f} MB  ({part['install_seconds']} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
