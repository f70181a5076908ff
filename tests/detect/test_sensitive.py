"""Sensitive categories by context (PIPL Art. 28), with data in sensitive.yaml."""

from __future__ import annotations

import pytest

from piguard import taxonomy
from piguard.detect import scan_text
from piguard.detect.sensitive import SensitiveContextDetector, load_rules


def found(text: str) -> set[tuple[str, str]]:
    ents = list(SensitiveContextDetector.entities)
    return {(f.entity, text[f.start : f.end]) for f in scan_text(text, entities=ents)}


@pytest.mark.parametrize(
    ("text", "entity", "term"),
    [
        ("患者张伟，男，确诊糖尿病。", "HEALTH_INFO", "糖尿病"),
        ("她是基督徒，每周做礼拜。", "RELIGIOUS_BELIEF", "基督徒"),
        ("请采集本人指纹后再办理。", "BIOMETRIC", "指纹"),
        ("我的孩子不满十四周岁。", "MINOR_INFO", "不满十四周岁"),
        ("借款人银行流水显示逾期三次。", "FINANCIAL_INFO", "银行流水"),
        ("他上周的行程轨迹已上报。", "WHEREABOUTS", "行程轨迹"),
        ("The patient was diagnosed with diabetes last year.", "HEALTH_INFO", "diabetes"),
        ("My son is under 14.", "MINOR_INFO", "under 14"),
    ],
)
def test_terms_with_a_person_cue_are_reported(text: str, entity: str, term: str) -> None:
    assert (entity, term) in found(text)


def test_findings_are_marked_sensitive() -> None:
    fs = scan_text("患者确诊高血压", entities=["HEALTH_INFO"])
    assert fs and all(f.sensitive for f in fs)
    for ent in SensitiveContextDetector.entities:
        assert taxonomy.is_sensitive(ent)


def test_term_without_a_person_is_below_the_default_threshold() -> None:
    text = "本系统支持糖尿病科普文章的检索。"
    assert found(text) == set()
    weak = scan_text(text, entities=["HEALTH_INFO"], min_confidence=0.3)
    assert [text[f.start : f.end] for f in weak] == ["糖尿病"]


def test_english_terms_need_word_boundaries() -> None:
    assert found("My archive of old photos") == set()  # 'hiv' inside 'archive'


def test_rules_are_data() -> None:
    rules = load_rules(
        "window: 8\nconfidence: 0.4\nconfidence_with_cue: 0.9\nperson_cues: [员工]\n"
        "categories:\n  HEALTH_INFO:\n    basis: test\n    terms: [职业病]\n"
    )
    assert rules.entities == ("HEALTH_INFO",)
    assert rules.rx_terms.search("员工职业病")


def test_log_noise_is_no_person_cue() -> None:
    """'75ms' is milliseconds, not Ms.; a customer on the next log line is someone else's record."""
    text = (
        "2024-03-05 12:41:03 DEBUG done status=200 latency=75ms path=/api/v1/loan/0\n"
        "2024-03-05 12:41:04 INFO 客户来电\n"
    )
    assert [f for f in scan_text(text) if f.entity == "FINANCIAL_INFO"] == []
    # A real cue on the same line still counts.
    found = scan_text("Ms. Chen asked to defer her mortgage payment.")
    assert [f.entity for f in found if f.detector == "sensitive_context"] == ["FINANCIAL_INFO"]


def test_a_header_row_names_columns_and_is_no_finding() -> None:
    csv = (
        "姓名,手机号,身份证号,性别,年龄,城市,职业,月收入,贷款金额,是否逾期\n"
        "张三,13812345678,,男,30,上海,教师,8000,5000,否\n"
    )
    assert found(csv) == set()
    md = "| 姓名 | 月收入 |\n|---|---|\n| 张三 | 8000 |\n"
    assert found(md) == set()
    # In prose beside a person the same word is a finding.
    assert ("FINANCIAL_INFO", "月收入") in found("客户张三，月收入 8000 元。")


def test_a_segment_of_a_url_path_is_no_term() -> None:
    log = "2024-03-05 12:41:03 DEBUG patient record sent path=/api/v1/loan/42 status=200\n"
    assert ("FINANCIAL_INFO", "loan") not in found(log)
    assert ("FINANCIAL_INFO", "loan") in found("The patient asked about her loan.")
