"""Reading labelled text (the examples a model is adapted on and scored against)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from piguard.detect.adapt_train import split_holdout, swap_mentions
from piguard.detect.labelled import LabelledDataError, LabelledText, parse_example, read_labelled


def test_three_layouts_read_to_the_same_spans() -> None:
    text = "浙商银行企业信贷部叶老桂博士认为"
    cluener = {"text": text, "label": {"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}}}
    own = {
        "text": text,
        "spans": [{"start": 9, "end": 12, "entity": "PERSON"}, {"start": 0, "end": 4, "entity": "company"}],
    }
    ccf = {
        "text": text,
        "entities": [{"label": "name", "start": 9, "end": 12}, {"label": "company", "start": 0, "end": 4}],
    }
    parsed = [parse_example(x) for x in (cluener, own, ccf)]
    assert parsed[0] == parsed[1] == parsed[2]
    assert parsed[0].spans == ((0, 4, "company"), (9, 12, "PERSON"))
    assert text[9:12] == "叶老桂"


def test_bad_lines_are_named_and_skipped(tmp_path: Path) -> None:
    f = tmp_path / "data.jsonl"
    lines = [
        json.dumps(
            {"text": "我叫王小明", "spans": [{"start": 2, "end": 5, "entity": "PERSON"}]}, ensure_ascii=False
        ),
        "{not json",
        json.dumps({"text": "短", "spans": [{"start": 0, "end": 9, "entity": "PERSON"}]}, ensure_ascii=False),
        json.dumps({"spans": []}),
        json.dumps({"text": "李雷来了", "label": {"name": {"李雷": [[0, 1]]}}}, ensure_ascii=False),
    ]
    f.write_text("\n".join(lines) + "\n", "utf-8")
    report = read_labelled([f])
    assert [ex.text for ex in report.examples] == ["我叫王小明", "李雷来了"]
    assert len(report.problems) == 3
    assert report.problems[0].startswith(f"{f}:2: not JSON")
    assert f"{f}:3: span [0, 9) is outside the text" in report.problems[1]
    assert f"{f}:4: no 'text'" in report.problems[2]


def test_unusable_files_raise_a_clear_error(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.jsonl"
    gbk.write_bytes(json.dumps({"text": "王小明"}, ensure_ascii=False).encode("gbk"))
    with pytest.raises(LabelledDataError, match=r"gbk\.jsonl: line 1 is not UTF-8"):
        read_labelled([gbk])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    with pytest.raises(LabelledDataError, match=r"empty\.jsonl: no usable labelled example"):
        read_labelled([empty])
    with pytest.raises(LabelledDataError, match=r"missing\.jsonl: cannot open"):
        read_labelled([tmp_path / "missing.jsonl"])


def test_holdout_split_is_disjoint_and_reproducible() -> None:
    exs = [LabelledText(f"第{i}句", ()) for i in range(50)]
    a_train, a_held = split_holdout(exs, 0.2, seed=3)
    b_train, b_held = split_holdout(exs, 0.2, seed=3)
    assert (a_train, a_held) == (b_train, b_held)
    assert len(a_held) == 10 and not {e.text for e in a_train} & {e.text for e in a_held}


def test_swapped_mentions_keep_spans_on_their_new_text() -> None:
    examples = [
        LabelledText("浙商银行叶老桂博士说", ((0, 4, "company"), (4, 7, "PERSON"))),
        LabelledText("刘烨认为欧阳娜娜说得对", ((0, 2, "PERSON"), (4, 8, "PERSON"))),
        LabelledText("没有标注", ()),
        LabelledText("重叠的例子", ((0, 3, "PERSON"), (1, 4, "company"))),
    ]
    names = {"叶老桂", "刘烨", "欧阳娜娜", "重叠的"}  # every labelled PERSON mention is in the pool
    for seed in range(5):
        copies = swap_mentions(examples, ("PERSON",), seed)
        assert len(copies) == 2  # unlabelled and overlapping examples are not copied
        for copy in copies:
            for s, e, lab in copy.spans:
                mention = copy.text[s:e]
                assert mention in names if lab == "PERSON" else mention == "浙商银行"
        assert copies[0].text.startswith("浙商银行") and copies[0].text.endswith("博士说")
        assert copies[1].text[copies[1].spans[0][1] :].startswith("认为")
