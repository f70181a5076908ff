"""Two writers at once lose nothing; a writer killed with SIGKILL mid-write leaves a chain that verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from piguard.ledger import Ledger

WRITER = str(Path(__file__).with_name("ledger_writer.py"))


def _spawn(url: str, prefix: str, count: int) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, WRITER, url, prefix, str(count)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def test_two_concurrent_writers_lose_no_consent(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()  # migrate once, before the writers race
    n = 150
    writers = [_spawn(ledger_url, prefix, n) for prefix in ("a", "b")]
    for w in writers:
        assert w.wait(timeout=120) == 0
    led = Ledger.open(ledger_url)
    with led.engine.connect() as conn:
        ids = set(conn.execute(text("SELECT id FROM ledger_consents")).scalars())
        recorded = set(
            conn.execute(text("SELECT object_id FROM ledger_audit WHERE action = 'consent.record'")).scalars()
        )
    expected = {f"{p}-{i}" for p in ("a", "b") for i in range(n)}
    assert ids == expected and recorded == expected
    res = led.verify()
    assert res.ok and res.entries == 2 * n
    led.close()


def test_two_processes_open_a_fresh_ledger_at_once(ledger_url: str) -> None:
    writers = [
        subprocess.Popen([sys.executable, WRITER, ledger_url, prefix, "5"], stdout=subprocess.PIPE, text=True)
        for prefix in ("x", "y")
    ]  # both start before either has migrated
    for w in writers:
        assert w.wait(timeout=120) == 0
    led = Ledger.open(ledger_url)
    assert led.counts()["consents"] == 10 and led.verify().ok
    led.close()


def test_chain_verifies_after_kill_9_mid_write(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()
    led = Ledger.open(ledger_url)
    for round_ in range(3):
        w = _spawn(ledger_url, f"k{round_}", 0)
        deadline = time.monotonic() + 60
        while led.counts()["consents"] < 40 * (round_ + 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(w.pid, signal.SIGKILL)
        w.wait(timeout=30)
        res = led.verify()
        assert res.ok, res.problem
        counts = led.counts()
        # Every consent has its audit entry and vice versa: no half-written change survived the kill.
        assert counts["consents"] == counts["audit"] == res.entries
    led.close()


def test_verify_during_writes_sees_one_consistent_snapshot(ledger_url: str) -> None:
    """Replay reads the log, then the tables: a write landing in between must not look like tampering."""
    Ledger.open(ledger_url).close()
    led = Ledger.open(ledger_url)
    w = _spawn(ledger_url, "v", 0)
    try:
        seen: list[int] = []
        deadline = time.monotonic() + 90
        while len(set(seen)) < 3 and time.monotonic() < deadline:
            res = led.verify()
            assert res.ok, res.problems
            seen.append(res.entries)
            time.sleep(0.05)
        assert len(set(seen)) >= 3, seen  # the writer really was writing while verify ran
    finally:
        os.kill(w.pid, signal.SIGKILL)
        w.wait(timeout=30)
    led.close()
