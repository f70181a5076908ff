"""Realistic files with names in them, labelled by construction: the shapes users scan whole.

Application logs (``key=value``), JSON lines, CSV exports with a header, tab-separated rows
(``{id}\\t{name}\\t{company}``) and customer-service chat transcripts, each a few thousand lines.
Identities come from Faker zh_CN with a fixed seed (as ``examples/make_loan_applicants.py`` makes its
table); every name's place in the file is known, so a scan's recall can be measured on the file as a whole
and line by line.

    from scan_corpora import build
    text, names = build("log", lines=2000)   # names: [(start, end)] character offsets, end exclusive
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from faker import Faker

Span = tuple[int, int]

_MSGS = [
    "登录成功", "下单成功", "支付失败：余额不足", "修改收货地址", "查询订单状态", "申请退款", "绑定银行卡",
    "重置密码", "实名认证通过", "提交借款申请", "还款成功", "会话超时，已退出",
]  # fmt: skip
_EVENTS = ["order_created", "payment_failed", "login", "profile_updated", "loan_applied", "refund_requested"]
_CITIES = ["北京市", "上海市", "广州市", "深圳市", "成都市", "杭州市", "武汉市", "西安市", "南京市", "重庆市"]
_JOBS = ["教师", "工程师", "销售", "个体经营", "医生", "司机", "文员", "厨师", "学生", "自由职业"]


class _Writer:
    """Text assembled piece by piece; a name's span is recorded as it is written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.names: list[Span] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.pos += len(s)

    def name(self, s: str) -> None:
        self.names.append((self.pos, self.pos + len(s)))
        self.add(s)

    def text(self) -> str:
        return "".join(self.parts)


def _ts(rnd: random.Random) -> str:
    return (
        f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} "
        f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        f".{rnd.randint(0, 999):03d}"
    )


def _log(w: _Writer, fake: Faker, rnd: random.Random, lines: int) -> None:
    keys = ["user", "name", "customer", "operator", "username", "realName", "contact"]
    for i in range(lines):
        ts, level = _ts(rnd), rnd.choice(["INFO", "INFO", "WARN", "DEBUG"])
        w.add(f"{ts} {level} [{rnd.choice(['auth', 'order', 'pay'])}-svc] ")
        w.add(f"req={rnd.getrandbits(32):08x} ")
        if rnd.random() < 0.9:
            w.add(f"{rnd.choice(keys)}=")
            w.name(fake.name())
            w.add(f" phone={fake.phone_number()} ")
        else:
            w.add(f"uid={rnd.randint(10000, 99999)} ")
        w.add(f"ip={fake.ipv4_private()} latency={rnd.randint(1, 900)}ms msg={rnd.choice(_MSGS)}\n")
        if i % 50 == 49:
            w.add(f"{_ts(rnd)} DEBUG [gc] pause={rnd.randint(1, 40)}ms heap={rnd.randint(100, 900)}MB\n")


def _jsonl(w: _Writer, fake: Faker, rnd: random.Random, lines: int) -> None:
    keys = ["name", "姓名", "customer_name", "realName", "客户姓名", "contact"]
    for _ in range(lines):
        key = rnd.choice(keys)
        name = fake.name()
        head = {
            "ts": _ts(rnd),
            "level": "INFO",
            "event": rnd.choice(_EVENTS),
            "uid": rnd.randint(10**5, 10**6),
        }
        w.add(
            json.dumps(head, ensure_ascii=False)[:-1]
            + ', "customer": {'
            + json.dumps(key, ensure_ascii=False)
            + ': "'
        )
        w.name(name)
        tail = {"mobile": fake.phone_number(), "city": rnd.choice(_CITIES)}
        w.add('", ' + json.dumps(tail, ensure_ascii=False)[1:] + ", ")
        w.add(
            json.dumps(
                {"amount": round(rnd.uniform(10, 5000), 2), "remark": rnd.choice(_MSGS)}, ensure_ascii=False
            )[1:]
        )
        w.add("}\n")


def _csv(w: _Writer, fake: Faker, rnd: random.Random, lines: int) -> None:
    w.add("客户编号,姓名,手机号,城市,职业,月收入,备注\n")
    for i in range(lines):
        w.add(f"C{100000 + i},")
        w.name(fake.name())
        phone, city, job = fake.phone_number(), rnd.choice(_CITIES), rnd.choice(_JOBS)
        w.add(f",{phone},{city},{job},{rnd.choice([3000, 8000, 20000])},")
        w.add(f"{rnd.choice(['', '', '老客户', '已核实', '需回访'])}\n")


def _tsv(w: _Writer, fake: Faker, rnd: random.Random, lines: int) -> None:
    for i in range(lines):
        w.add(f"{100000 + i}\t")
        w.name(fake.name())
        w.add(f"\t{fake.company()}\n")


def _chat(w: _Writer, fake: Faker, rnd: random.Random, lines: int) -> None:
    agent = "在线客服"
    while lines > 0:
        name = fake.name()
        title = rnd.choice(["先生", "女士"])
        for turn in range(6):
            w.add(f"[{_ts(rnd)[:19]}] ")
            if turn == 0:
                w.add(f"{agent}: 您好，这里是信用卡中心，请问是")
                w.name(name)
                w.add(f"{title}吗？\n")
            elif turn == 1:
                w.name(name)
                w.add(": 是我，有什么事？\n")
            elif turn == 2:
                tail, days = rnd.randint(1000, 9999), rnd.randint(1, 30)
                w.add(f"{agent}: 您尾号{tail}的账单已逾期{days}天，请尽快还款。\n")
            elif turn == 3:
                w.name(name)
                w.add(f": 好的，我今天就还。我的手机号是{fake.phone_number()}，有问题再联系我。\n")
            elif turn == 4:
                w.add(f"{agent}: 好的，")
                w.name(name)
                w.add(f"{title}，已为您登记，回访人是")
                other = fake.name()
                w.name(other)
                w.add("。\n")
            else:
                w.add(f"{agent}: 感谢您的配合，再见。\n")
            lines -= 1


KINDS: dict[str, Callable[[_Writer, Faker, random.Random, int], None]] = {
    "log": _log,
    "jsonl": _jsonl,
    "csv": _csv,
    "tsv": _tsv,
    "chat": _chat,
}
SUFFIX = {"log": ".log", "jsonl": ".jsonl", "csv": ".csv", "tsv": ".tsv", "chat": ".txt"}


def build(kind: str, lines: int = 2000, seed: int = 20240301) -> tuple[str, list[Span]]:
    """The text of one file of ``kind`` and its names' spans."""
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rnd = random.Random(seed)
    w = _Writer()
    KINDS[kind](w, fake, rnd, lines)
    return w.text(), w.names
