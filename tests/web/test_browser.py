"""The portal and dashboard as people use them: `piguard serve` in its own uvicorn process, clicked through
in Debian's headless Chromium (Selenium with Debian's chromedriver). A person goes from request to verified
to a downloaded copy on a phone-sized screen; staff log in and approve a deletion; the server's log holds
no contact, code or token."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rights_env import KEY, PHONE, free_port, make_crm, write_stores

from piguard.keys import generate
from piguard.ledger import Ledger
from piguard.rights import RightsService

pytestmark = pytest.mark.slow


def _need(path: str, what: str) -> str:
    exe = shutil.which(path) or (path if os.path.exists(path) else None)
    if exe is None:
        msg = f"{what} needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _piguard(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    res = subprocess.run(
        [sys.executable, "-c", "from piguard.cli import main; main()", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    # One ledger key for this process and the server's: it makes the pseudonyms and authenticates the log.
    monkeypatch.setenv("PIGUARD_LEDGER_KEY", KEY.hex())
    env = {**os.environ}
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    stores = write_stores(tmp_path / "stores.yaml", make_crm(tmp_path / "crm.db"), None)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    generate(tmp_path / "controller")
    led = Ledger.open(ledger)  # (the CLI's `rights staff add` has its own test: one process less here)
    staff_token = RightsService(led, KEY).add_staff("admin1", "admin", "s3cret-pass")
    led.close()
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from piguard.cli import main; main()",
            "serve",
            "--ledger",
            ledger,
            "--stores",
            str(stores),
            "--outbox",
            str(outbox),
            "--signing-key",
            str(tmp_path / "controller.key"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: on a machine shared by many builds, importing the CLI alone has taken 20 s.
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None:
                raise AssertionError("server exited: " + (tmp_path / "server.log").read_text())
            if time.monotonic() > deadline:
                log = (tmp_path / "server.log").read_text()
                raise AssertionError(f"server did not answer in 180 s: {log}")
            time.sleep(0.2)
        yield {
            "base": base,
            "outbox": outbox,
            "log": tmp_path / "server.log",
            "tmp": tmp_path,
            "staff_token": staff_token,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    chromium = _need("/usr/bin/chromium", "Debian's chromium")
    driver_exe = _need("/usr/bin/chromedriver", "Debian's chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=390,844",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(executable_path=driver_exe), options=opts)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.implicitly_wait(30)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _wait_status(driver: Any, want: str) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(
        driver, 60, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    ).until(lambda d: d.find_element(By.ID, "status").get_attribute("data-status") == want)


def _code(outbox: Path, rid: str) -> str:
    return re.search(r"(\d{6})", (outbox / f"{rid}.txt").read_text(encoding="utf-8")).group(1)


def test_subject_downloads_a_copy_and_staff_approve_a_deletion(
    server: dict, browser: tuple[Any, Path]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    (d, downloads), base = browser, server["base"]
    d.get(base + "/")
    assert "个人信息权利申请" in d.title  # Chinese by default
    assert d.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )  # fits a phone
    Select(d.find_element(By.ID, "type")).select_by_value("copy")
    Select(d.find_element(By.ID, "kind")).select_by_value("phone")
    d.find_element(By.ID, "value").send_keys("138 1234 5678")
    d.find_element(By.ID, "submit").click()
    rid = d.find_element(By.ID, "rid").text
    assert rid.startswith("r_") and "/verify" in d.current_url
    code = _code(server["outbox"], rid)
    d.find_element(By.ID, "code").send_keys(code)
    d.find_element(By.ID, "verify").click()
    _wait_status(d, "completed")
    assert "王小明" in d.find_element(By.ID, "data").text
    d.find_element(By.ID, "download-json").click()
    target = downloads / f"{rid}.json"
    deadline = time.monotonic() + 60
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    copy = json.loads(target.read_text(encoding="utf-8"))
    assert {r["name"] for r in copy["held"]["crm"]["customers"]} == {"王小明"}
    d.find_element(By.ID, "lang").click()
    assert "What we hold about you" in d.page_source

    # The same person asks for deletion through the API; staff approve it on the dashboard.
    r = httpx.post(
        base + "/api/v1/requests",
        json={"type": "deletion", "identifier": {"kind": "phone", "value": PHONE}},
        timeout=60,
    )
    deletion = r.json()["id"]
    v = httpx.post(
        f"{base}/api/v1/requests/{deletion}/verify",
        json={"code": _code(server["outbox"], deletion)},
        timeout=60,
    )
    subject_token = v.json()["token"]
    d.get(base + "/staff")
    assert d.current_url.endswith("/staff/login")
    d.find_element(By.ID, "name").send_keys("admin1")
    d.find_element(By.ID, "password").send_keys("s3cret-pass")
    d.find_element(By.ID, "login").click()
    d.find_element(By.LINK_TEXT, deletion).click()
    assert d.find_element(By.ID, "status").get_attribute("data-status") == "verified"
    d.find_element(By.ID, "approve").click()
    _wait_status(d, "completed")  # the page after the post, not the one clicked on
    assert '"complete": true' in d.find_element(By.ID, "outcome").text
    seen = httpx.get(
        f"{base}/api/v1/requests/{deletion}", headers={"Authorization": f"Bearer {subject_token}"}, timeout=60
    )
    assert seen.json()["status"] == "completed" and seen.json()["outcome"]["receipt"]["complete"]
    receipt = server["tmp"] / "receipt.json"
    receipt.write_text(json.dumps(seen.json()), encoding="utf-8")
    out = _piguard(
        "rights",
        "verify-receipt",
        str(receipt),
        "--key",
        str(server["tmp"] / "controller.pub"),
        env=dict(os.environ),
    )
    assert out.startswith(f"ok: receipt for {deletion}")

    log = server["log"].read_text(encoding="utf-8")
    assert "POST /api/v1/requests" in log  # the access log is there, and holds nothing secret:
    for secret in (
        PHONE,
        "138 1234 5678",
        code,
        subject_token,
        server["staff_token"],
        "s3cret-pass",
        KEY.hex(),
    ):
        assert secret not in log
    assert "PRIVATE KEY" not in log and "BEGIN" not in log
