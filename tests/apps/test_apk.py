"""APK facts on the seven real APKs of the shared data, and the bad-input list."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from piguard.apps import AppInputError, read_apk
from piguard.apps.apk import find_sdks
from shared_data import needs_shared, shared_path

REAL_APKS = shared_path("data", "apps", "apk")
INVENTORY = REAL_APKS / "apk_inventory.json"


def _inventory() -> list[dict]:  # type: ignore[type-arg]
    rows = json.loads(INVENTORY.read_text("utf-8"))
    return [r for r in rows if not r.get("not_copied") and r["package"]]


@needs_shared(INVENTORY)
@pytest.mark.parametrize("name", ["Test-debug.apk", "TestActivity.apk", "a2dp.Vol_137.apk",
                                  "com.politedroid_4.apk", "com.teleca.jamendo_35.apk",
                                  "duplicate.permisssions_9999999.apk"])  # fmt: skip
def test_real_apk_matches_the_inventory(name: str) -> None:
    row = next(r for r in _inventory() if r["file"] == name)
    facts = read_apk(REAL_APKS / name)
    assert facts.package == row["package"]
    assert facts.sha256 == row["sha256"]
    assert {p["name"] for p in facts.permissions} == set(row["permissions"])
    # Exodus found no tracker in these apps; the catalogue finds no SDK either.
    assert [s["name"] for s in facts.sdks] == row["exodus_trackers_found"] == []


@needs_shared(INVENTORY)
def test_a2dp_permissions_and_sensitive_apis() -> None:
    facts = read_apk(REAL_APKS / "a2dp.Vol_137.apk")
    perms = {p["name"]: p for p in facts.permissions}
    assert perms["android.permission.READ_CONTACTS"]["entities"] == ["CONTACT_LIST"]
    assert perms["android.permission.READ_CONTACTS"]["dangerous"] is True
    assert perms["android.permission.BLUETOOTH_ADMIN"]["entities"] == []
    kinds = {s["kind"]: s for s in facts.sensitive_apis}
    assert {"location", "sms", "installed_apps"} <= set(kinds)
    assert any(c["method"].startswith("a2dp.Vol.") for c in kinds["location"]["callers"])
    assert facts.application_class == "a2dp.Vol.MyApplication" and facts.launcher_activity == "a2dp.Vol.main"


@needs_shared(INVENTORY)
def test_multidex_fixture_without_manifest_is_refused() -> None:
    with pytest.raises(AppInputError, match=r"without AndroidManifest\.xml"):
        read_apk(REAL_APKS / "multidex.apk")


def test_sdk_prefixes_end_at_a_package_boundary() -> None:
    assert [s["id"] for s in find_sdks(["Lcom/qq/e/ads/banner/BannerView;"])] == ["tencent_ads"]
    assert find_sdks(["Lcom/qq/eagle/Main;", "Lcom/umengx/A;"]) == []
    hit = find_sdks(["Lcom/umeng/analytics/MobclickAgent;", "Lcom/umeng/analytics/pro/a;"])[0]
    assert hit["name"] == "Umeng Analytics (U-App)" and hit["classes"] == 2 and "DEVICE_ID" in hit["entities"]


def test_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "notes.apk"
    p.write_text("hello, not an app", "utf-8")
    with pytest.raises(AppInputError, match=r"notes.apk: not an APK \(not a zip archive\)"):
        read_apk(p)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.apk"
    p.write_bytes(b"")
    with pytest.raises(AppInputError, match="empty file"):
        read_apk(p)


def test_truncated_zip(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    data = lender_apps["lawful"].read_bytes()
    p = tmp_path / "truncated.apk"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AppInputError, match="corrupt or truncated zip"):
        read_apk(p)


def test_corrupt_dex_entry(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    p = tmp_path / "baddex.apk"
    with zipfile.ZipFile(lender_apps["lawful"]) as src, zipfile.ZipFile(p, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"not a dex file" if info.filename == "classes.dex" else data)
    with pytest.raises(AppInputError, match=r"classes\.dex is not a DEX file"):
        read_apk(p)


def test_zip_bomb(tmp_path: Path) -> None:
    p = tmp_path / "bomb.apk"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("AndroidManifest.xml", b"\0" * 16)
        with zf.open("assets/zeros.bin", "w") as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(80):
                fh.write(chunk)
    with pytest.raises(AppInputError, match="zip bomb refused"):
        read_apk(p)


def test_packed_app_is_flagged(lender_apps: dict[str, Path], tmp_path: Path) -> None:
    p = tmp_path / "packed.apk"
    shutil.copy(lender_apps["lawful"], p)
    with zipfile.ZipFile(p, "a") as zf:
        zf.writestr("lib/armeabi-v7a/libjiagu.so", b"\x7fELF")
    facts = read_apk(p)
    assert facts.packer == "360 Jiagu (360加固)"
    assert any("packed by 360 Jiagu" in n for n in facts.notes)
