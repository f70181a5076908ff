"""User-defined detectors (Python and YAML) registered beside the built-in ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from stdnum import luhn

from piguard import taxonomy
from piguard.detect import (
    DetectorConfigError,
    PatternDetector,
    RawHit,
    Registry,
    load_detector_file,
    scan_text,
)
from piguard.detect.registry import StructuredDetector

YAML = """\
detectors:
  - name: employee_id
    entity: EMPLOYEE_ID
    pattern: 'EMP-\\d{6}'
    confidence: 0.7
    context: [工号, employee]
  - name: member_card
    entity: MEMBER_CARD
    pattern: '\\bM\\d{15}\\b'
    validator: luhn
    confidence: 0.8
"""


def write(tmp_path: Path, text: str, name: str = "det.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_yaml_detectors_find_validate_and_use_context(tmp_path: Path) -> None:
    reg = Registry.default().load_yaml(write(tmp_path, YAML))
    valid = "M" + "12345678901234" + luhn.calc_check_digit("12345678901234")
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    text = f"工号 EMP-123456；会员卡 {valid} 与 {invalid}；手机 13812345678"
    found = scan_text(text, registry=reg)
    got = {(f.entity, text[f.start : f.end], f.detector) for f in found}
    assert ("EMPLOYEE_ID", "EMP-123456", "employee_id") in got
    assert ("MEMBER_CARD", valid, "member_card") in got
    assert all(text[f.start : f.end] != invalid for f in found)
    assert ("PHONE_NUMBER", "13812345678", "structured") in got
    emp = next(f for f in found if f.entity == "EMPLOYEE_ID")
    assert emp.confidence == pytest.approx(0.9)  # 0.7 + context boost for 工号
    assert emp.masked != "EMP-123456"
    # Without the context word the base confidence stays.
    plain = scan_text("code EMP-654321", registry=reg, entities=["EMPLOYEE_ID"])
    assert [f.confidence for f in plain] == [pytest.approx(0.7)]


def test_user_entities_can_be_selected_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    reg = Registry.default().load_yaml(write(tmp_path, YAML))
    only = scan_text("EMP-123456 13812345678", registry=reg, entities=["EMPLOYEE_ID"])
    assert [f.entity for f in only] == ["EMPLOYEE_ID"]
    with pytest.raises(taxonomy.UnknownEntity):
        scan_text("x", registry=reg, entities=["NOT_AN_ENTITY"])


def test_python_detector_in_registry() -> None:
    class Badge:
        name = "badge"
        entities = ("BADGE_ID",)

        def find(self, text: str) -> list[RawHit]:
            i = text.find("BADGE#")
            return [] if i < 0 else [RawHit("BADGE_ID", i, i + 10, 0.9, self.name)]

    reg = Registry([StructuredDetector(), Badge()])
    found = scan_text("刷卡 BADGE#1234 进门", registry=reg)
    assert [(f.entity, f.detector) for f in found] == [("BADGE_ID", "badge")]
    with pytest.raises(ValueError, match="already registered"):
        reg.add(Badge())


def test_cn_ric_validator_in_a_user_pattern() -> None:
    det = PatternDetector(name="ids", entity="STAFF_ID", pattern=r"\d{17}[\dXx]", validator="cn_ric")
    assert [(h.start, h.end) for h in det.find("a 11010519491231002X b 110105194912310021")] == [(2, 20)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("detectors: [", "cannot read detector file"),
        ("- just a list", "expected a mapping with a 'detectors' list"),
        ("detectors:\n  - 42\n", "detector #1 is not a mapping"),
        ("detectors:\n  - {name: a, entity: B}\n", "lacks pattern"),
        (
            "detectors:\n  - {name: a, entity: B, pattern: 'x', validator: crc99}\n",
            "unknown validator 'crc99'",
        ),
        ("detectors:\n  - {name: a, entity: B, pattern: '(unclosed'}\n", "bad pattern"),
    ],
)
def test_bad_detector_files_name_the_file_and_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(DetectorConfigError) as err:
        load_detector_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_detector_file(tmp_path: Path) -> None:
    with pytest.raises(DetectorConfigError, match="cannot read"):
        load_detector_file(tmp_path / "absent.yaml")


def test_built_in_families_are_loaded_when_they_read_and_declare_their_classes_entities() -> None:
    import importlib

    from piguard.detect.registry import BUILTIN_FAMILIES, LazyDetector

    for module, attr, name, entities in BUILTIN_FAMILIES:
        cls = getattr(importlib.import_module(module), attr)
        assert (cls.name, tuple(cls.entities)) == (name, entities)
    reg = Registry.default()
    lazy = [d for d in reg.detectors if isinstance(d, LazyDetector)]
    assert [d.name for d in lazy] == [name for _, _, name, _ in BUILTIN_FAMILIES]
    assert lazy[0].find("姓名：李雷") and lazy[0].detector.name == "names"
