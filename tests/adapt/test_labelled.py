"""Reading labelled text (the examples a model is adapted on and scored against)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from piguard.adapt.labelled import LabelledDataError, LabelledText, parse_example, read_labelled
from piguard.adapt.train import split_holdout, swap_mentions


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


def _columns(rows: list[tuple[str, str]], sep: str = " ") -> str:
    """Token-per-line text; an empty row ends a sentence."""
    return "".join(f"{tok}{sep}{tag}\n" if tok else "\n" for tok, tag in rows)


def test_column_files_in_each_tag_scheme_read_to_the_json_spans(tmp_path: Path) -> None:
    text = "浙商银行叶老桂说"
    expected = parse_example(
        {
            "text": text,
            "entities": [{"label": "ORG", "start": 0, "end": 4}, {"label": "PER", "start": 4, "end": 7}],
        }
    )
    schemes = {
        "bio": ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "B-PER", "I-PER", "I-PER", "O"],
        "bmes": ["B-ORG", "M-ORG", "M-ORG", "E-ORG", "B-PER", "M-PER", "E-PER", "O"],
        "bilou": ["B-ORG", "I-ORG", "I-ORG", "L-ORG", "B-PER", "I-PER", "L-PER", "O"],
    }
    for name, tags in schemes.items():
        f = tmp_path / f"{name}.txt"
        sep = "\t" if name == "bio" else " "  # Weibo NER is tab-separated, MSRA space-separated
        f.write_text(_columns([*zip(text, tags, strict=True), ("", "")], sep), "utf-8")
        report = read_labelled([f])
        assert report.examples == [expected], name
        assert not report.problems
    assert expected.spans == ((0, 4, "ORG"), (4, 7, "PERSON"))  # PER is a person; ORG kept as given


def test_column_sentences_end_at_blank_lines_and_single_tokens_are_spans(tmp_path: Path) -> None:
    f = tmp_path / "msra.txt"
    rows = [("-DOCSTART-", "O"), ("", ""), ("王", "S-PER"), ("说", "O"), ("", ""), ("", "")]
    rows += [("去", "O"), ("京", "I-LOC"), ("城", "I-LOC")]  # I- after O begins a span; no final blank line
    f.write_text(_columns(rows).replace("\n", "\r\n"), "utf-8")  # Windows line ends, as MSRA ships
    report = read_labelled([f])
    assert report.examples == [
        LabelledText("王说", ((0, 1, "PERSON"),)),
        LabelledText("去京城", ((1, 3, "LOC"),)),
    ]


def test_a_column_sentence_with_a_bad_line_is_named_and_skipped(tmp_path: Path) -> None:
    f = tmp_path / "weibo.conll"
    rows = [("李", "B-PER"), ("雷", "I-PER"), ("", "")]
    rows += [("韩", "B-PER"), ("梅", "X-PER"), ("梅", "I-PER"), ("", "")]  # line 5: no such tag
    rows += [("好", "O"), ("", "")]
    text = _columns(rows).replace("梅 I-PER\n", "梅\n")  # line 6: a token without a tag
    f.write_text(text, "utf-8")
    report = read_labelled([f])
    assert [ex.text for ex in report.examples] == ["李雷", "好"]
    assert report.problems == [
        f"{f}:5: the last column is not a tag (O, or B-/I-/M-/E-/S-/L-/U- and a label) (sentence skipped)"
    ]
    # A malformed line's last column may be text; it is not echoed.
    bad = tmp_path / "shifted.txt"
    bad.write_text("好 O\n\n王 B-PER\n小明 O 小\n\n", "utf-8")
    assert read_labelled([bad]).problems[0] == (
        f"{bad}:4: the last column is not a tag (O, or B-/I-/M-/E-/S-/L-/U- and a label) (sentence skipped)"
    )


def test_multi_column_files_take_the_first_and_last_columns(tmp_path: Path) -> None:
    f = tmp_path / "conll.txt"
    f.write_text("张 NR _ B-PER\n三 NR _ E-PER\n来 VV _ O\n\n", "utf-8")
    assert read_labelled([f]).examples == [LabelledText("张三来", ((0, 2, "PERSON"),))]
