"""Shared fixtures: real database servers, read from the environment with this machine's defaults.

When a server is unreachable the test fails under CI (CI=true) and is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest

# Test modules import tests/shared_data.py by name; with --import-mode=importlib pytest does not put
# this directory on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

POSTGRES_URL = os.environ.get(
    "PIGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("PIGUARD_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("PIGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> tuple[bool, str]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port} unreachable ({exc})"


def require_server(url: str, default_port: int, what: str) -> str:
    ok, why = _reachable(url, default_port)
    if not ok:
        msg = f"{what} server needed: {why}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return url


@pytest.fixture
def postgres_url() -> str:
    return require_server(POSTGRES_URL, 5432, "PostgreSQL")


@pytest.fixture
def mariadb_url() -> str:
    return require_server(MARIADB_URL, 3306, "MariaDB")


@pytest.fixture
def redis_url() -> str:
    return require_server(REDIS_URL, 6379, "Redis")


@pytest.fixture
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Run Debian's headless Chromium: ``chromium(url_or_file, "--dump-dom")`` returns stdout."""
    import shutil
    import subprocess

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "headless Chromium needed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)

    def run(target: str, *args: str, timeout: float = 60) -> str:
        profile = tmp_path_factory.mktemp("chromium-profile")
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", *args, target,
        ]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(f"chromium failed ({res.returncode}): {res.stderr[-2000:]}")
        return res.stdout

    return run
