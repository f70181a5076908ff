"""Joint fixtures: member key pairs, a trust directory, and serving members as real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from piguard.keys import SigningKey, generate

PIGUARD = [sys.executable, "-c", "import sys; from piguard.cli import main; sys.argv[0] = 'piguard'; main()"]


@dataclass
class Members:
    dir: Path
    trust: Path
    keys: dict[str, SigningKey]

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


@pytest.fixture
def members(tmp_path: Path) -> Members:
    """bank, provider, lender2, aggregator (all trusted) and mallory (not in the trust directory)."""
    kd = tmp_path / "keys"
    trust = tmp_path / "trust"
    kd.mkdir()
    trust.mkdir()
    keys = {}
    for name in ("bank", "provider", "lender2", "aggregator", "mallory"):
        keys[name] = generate(kd / name, owner=name)
        if name != "mallory":
            shutil.copy(kd / f"{name}.pub", trust / f"{name}.pub")
    return Members(kd, trust, keys)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIGUARD, *args], capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text("utf-8")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``piguard joint ARGS --port 0`` as its own process; wait for its 'listening on' line."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        err = tmp_path / f"serve-{len(procs)}.err"
        fh = err.open("w")
        proc = subprocess.Popen(
            [*PIGUARD, "joint", *args, "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=fh,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        procs.append(proc)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            text = err.read_text("utf-8")
            for line in text.splitlines():
                if line.startswith("listening on "):
                    return Served(line.split()[-1], proc, err)
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {text}")
            time.sleep(0.1)
        raise AssertionError("server did not start: " + err.read_text("utf-8"))

    yield start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path
