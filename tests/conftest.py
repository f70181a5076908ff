"""Shared fixtures: real database servers, read from the environment with this machine's defaults.

When a server is unreachable the test fails under CI (CI=true) and is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

POSTGRES_URL = os.environ.get("PIGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
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
