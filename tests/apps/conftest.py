"""Test apps: the lending app in fixtures/lender (smali sources and a manifest) assembled with Debian's
apktool (smali + aapt) in two variants, and the real APKs of the shared data.

``unlawful``: target SDK 22, the push SDK started in Application.onCreate. ``lawful``: target SDK 28, the
push SDK started only from the consent button's handler. Both read contacts and location on the first screen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shared_data import shared_path

FIXTURES = Path(__file__).parent / "fixtures"
POLICIES = FIXTURES / "policies"
REAL_APKS = shared_path("data", "apps", "apk")


def _need_apktool() -> str:
    exe = shutil.which("apktool")
    if exe is None:
        msg = "apktool needed to assemble the test apps (apt-get install apktool)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _build(exe: str, work: Path, name: str, target_sdk: int, early_init: bool) -> Path:
    src = work / name
    shutil.copytree(FIXTURES / "lender", src)
    manifest = src / "AndroidManifest.xml"
    manifest.write_text(manifest.read_text("utf-8").replace("@TARGET_SDK@", str(target_sdk)), "utf-8")
    if early_init:
        app = src / "smali" / "com" / "example" / "lender" / "LenderApp.smali"
        app.write_text(app.read_text("utf-8").replace("#@EARLY_INIT@ ", ""), "utf-8")
    out = work / f"{name}.apk"
    # -p: apktool's framework directory in the test's temp dir, not the user's home.
    res = subprocess.run([exe, "b", "-q", "-p", str(work / "framework"), "-o", str(out), str(src)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    if res.returncode != 0 or not out.exists():
        raise AssertionError(f"apktool failed: {res.stdout[-2000:]} {res.stderr[-2000:]}")
    return out


@pytest.fixture(scope="session")
def lender_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    exe = _need_apktool()
    work = tmp_path_factory.mktemp("lender")
    return {
        "unlawful": _build(exe, work, "unlawful", 22, True),
        "lawful": _build(exe, work, "lawful", 28, False),
    }
