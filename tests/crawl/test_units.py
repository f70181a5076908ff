"""In-process checks of the pieces the crawler is built from (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from piguard.crawl.pifilter import PiPolicy, PolicyError, filter_texts
from piguard.crawl.signals import (
    TdmRep,
    apply_tdmrep,
    html_text,
    page_signals,
    protection_from_markup,
    retry_after_seconds,
    rules,
)
from piguard.crawl.store import PageStore

TEXTS = [
    "客户 13812345678 与 13987654321",
    "",
    "mail: li.si@example.com; ip 10.0.0.8",
    "身份证 11010519491231002X 银行卡 6222021234567890128",
    "nothing personal here",
]


def test_batched_filter_equals_one_call_per_text() -> None:
    pol = PiPolicy.parse("EMAIL_ADDRESS=drop", "structured")
    batched = filter_texts(TEXTS, pol)
    single = [filter_texts([t], pol)[0] for t in TEXTS]
    assert [(t, r.as_dict()) for t, r in batched] == [(t, r.as_dict()) for t, r in single]
    assert "13812345678" not in batched[0][0] and "li.si" not in batched[2][0]
    assert batched[2][1].kept == {"IP_ADDRESS": 1} and batched[0][1].masked == {"PHONE_NUMBER": 2}


def test_policy_rejects_unknown_entity_or_action() -> None:
    with pytest.raises(PolicyError, match="NOT_AN_ENTITY"):
        PiPolicy.parse("NOT_AN_ENTITY=drop")
    with pytest.raises(PolicyError, match="shred"):
        PiPolicy.parse("PHONE_NUMBER=shred")


def test_default_policy_follows_rules_file() -> None:
    pol = PiPolicy()
    assert pol.action("CN_RESIDENT_ID") == "mask"  # sensitive (PIPL Art. 28)
    assert pol.action("EMAIL_ADDRESS") == "mask"  # direct identifier
    assert pol.action("IP_ADDRESS") == "keep"  # quasi-identifier, not sensitive
    assert "PIPL" in rules()["sources"]


def test_tdmrep_first_match_and_malformed() -> None:
    rep = TdmRep(b'[{"location": "/free/*", "tdm-reservation": 0}, {"location": "/*", "tdm-reservation": 1}]')
    assert rep.lookup("https://h/free/a") == (0, None) and rep.lookup("https://h/other")[0] == 1
    with pytest.raises(ValueError):
        TdmRep(b'{"not": "an array"}')
    sig = page_signals({"tdm-reservation": ["0"]}, None, "bot")
    apply_tdmrep(sig, rep, "https://h/other")
    assert sig.tdm_reservation == 0 and sig.tdm_source == "header"  # the header beats the file


def test_x_robots_tag_scoped_to_other_agent_ignored() -> None:
    sig = page_signals({"x-robots-tag": ["googlebot: noai", "mybot: noindex"]}, None, "mybot")
    assert sig.robots_directives == ["noindex"] and not sig.reserved


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_seconds(b"120", 0) == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 60) == pytest.approx(60)
    assert retry_after_seconds(b"soon", 0) is None


def test_markup_protection_ignores_prose_about_captchas() -> None:
    assert protection_from_markup("<p>How CAPTCHA and login walls work</p>") is None
    assert (
        protection_from_markup('<script src="https://www.recaptcha.net/recaptcha/api.js"></script>')
        == "captcha"
    )


def test_markup_keyword_prefilter_is_case_insensitive_like_the_regex() -> None:
    # The substring prefilter must say yes wherever the IGNORECASE patterns could match, including the
    # non-ASCII characters re.IGNORECASE equates with ASCII letters (long s, Kelvin sign, dotless i).
    login = '<p>客户</p><FORM id="LogIn-box"><INPUT TYPE=PASSWORD></form>'
    assert protection_from_markup(login) == "login_wall"
    assert protection_from_markup('<p>客户</p><input type="pa\u017f\u017fword">') == "login_wall"
    assert protection_from_markup('<div class="g-reCAPTCHA">数据</div>') == "captcha"
    assert protection_from_markup("<p>数据 平台 产品</p>" * 50) is None


def test_html_text_skips_scripts_and_survives_garbage() -> None:
    assert html_text("<script>secret()</script><p>a</p><p>b") == "a\nb"
    assert "<<<>>>" in html_text("\x00\x01<<<>>>")  # no exception, the text kept


def test_store_atomic_files_and_counts(tmp_path: Path) -> None:
    store = PageStore(tmp_path)
    store.store_page(
        {"url": "http://h/a", "outcome": "stored", "pi": {"removed": {"PHONE_NUMBER": 2}}}, "text"
    )
    store.record({"url": "http://h/b", "outcome": "protected", "protection": "captcha"})
    summary = store.close()
    assert summary["pages_stored"] == 1 and summary["protected_by_kind"] == {"captcha": 1}
    assert summary["pi_removed_by_entity"] == {"PHONE_NUMBER": 2}
    lines = [json.loads(x) for x in (tmp_path / "provenance.jsonl").read_text().splitlines()]
    assert lines[0]["path"].startswith("pages/") and (tmp_path / lines[0]["path"]).read_text() == "text"
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert not list(tmp_path.rglob("*.tmp"))


def test_robots_cache_capped_at_24_hours(tmp_path: Path) -> None:
    from scrapy.utils.test import get_crawler

    from piguard.crawl.middleware import PiguardMiddleware

    crawler = get_crawler(settings_dict={
        "PIGUARD_USER_AGENT": "bot/1.0 (+https://example.org)", "PIGUARD_OUT": str(tmp_path),
        "PIGUARD_ROBOTS_CACHE_SECONDS": 10**6,
    })  # fmt: skip
    mw = PiguardMiddleware.from_crawler(crawler)
    assert mw.cache_ttl == 86400 and mw.parse_limit == 500 * 1024 and mw.max_redirects == 5


def test_settings_default_concurrent_items_yields_to_project_value() -> None:
    from piguard.crawl.settings import piguard_settings

    ua = "bot/1.0 (+https://example.org)"
    assert piguard_settings(None, user_agent=ua)["CONCURRENT_ITEMS"] == 16
    assert piguard_settings({"CONCURRENT_ITEMS": 50}, user_agent=ua)["CONCURRENT_ITEMS"] == 50


def test_pipeline_freezes_startup_heap_for_the_crawl_only(tmp_path: Path) -> None:
    import asyncio
    import gc

    from scrapy.utils.test import get_crawler

    from piguard.crawl.pipeline import PiguardPipeline
    from piguard.crawl.settings import piguard_settings

    settings = piguard_settings(None, user_agent="bot/1.0 (+https://example.org)", out=str(tmp_path))
    pipe = PiguardPipeline.from_crawler(get_crawler(settings_dict=settings))
    try:
        pipe.open_spider()
        assert gc.get_freeze_count() > 0
    finally:
        asyncio.run(pipe.close_spider())
    assert gc.get_freeze_count() == 0 and (tmp_path / "summary.json").exists()


def test_signals_as_dict_has_every_field() -> None:
    from dataclasses import asdict

    sig = page_signals({"x-robots-tag": ["noai"], "tdm-policy": ["https://p"]}, "<p>x</p>", "bot")
    assert sig.as_dict() == {**asdict(sig), "reserved": True}
