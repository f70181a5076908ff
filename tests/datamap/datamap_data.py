"""A customer table built to mislead: names that lie, Chinese and pinyin headers, order numbers that pass the
phone check, ID numbers with wrong check digits, organisation codes, dates that are not birthdays."""

from __future__ import annotations

import random

import polars as pl
import sqlalchemy as sa
from stdnum import luhn
from stdnum.cn import uscc

_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_REGIONS = ["110101", "310104", "440305", "620102", "330106", "510107"]
_SURNAMES = "王李张刘陈杨黄赵吴周"
_GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟"]


def resident_id(rng: random.Random, valid: bool = True) -> str:
    born = f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = rng.choice(_REGIONS) + born + f"{rng.randint(0, 999):03d}"
    s = sum(int(a) * w for a, w in zip(body, _W, strict=True)) % 11
    return body + "10X98765432"[s if valid else (s + 1 + rng.randint(0, 9)) % 11]


def mobile(rng: random.Random) -> str:
    return rng.choice(["138", "139", "186", "150", "177", "199", "135"]) + f"{rng.randint(0, 99999999):08d}"


def bank_card(rng: random.Random) -> str:
    body = "622202" + "".join(str(rng.randint(0, 9)) for _ in range(12))
    return body + luhn.calc_check_digit(body)


def org_code(rng: random.Random) -> str:
    body = (
        "9111"
        + "".join(str(rng.randint(0, 9)) for _ in range(4))
        + "MA"
        + "".join(rng.choice("0123456789ABCDEFGH") for _ in range(7))
    )
    return body + uscc.calc_check_digit(body)


def address(rng: random.Random) -> str:
    return (
        rng.choice(["浙江省杭州市西湖区", "广东省深圳市南山区", "四川省成都市武侯区", "北京市朝阳区"])
        + rng.choice(["文三路", "科技园路", "人民南路", "建国路"])
        + f"{rng.randint(1, 999)}号{rng.randint(1, 30)}栋{rng.randint(101, 2505)}室"
    )


def customers(n: int = 400, seed: int = 7) -> pl.DataFrame:
    rng = random.Random(seed)
    return pl.DataFrame(
        {
            "客户姓名": [rng.choice(_SURNAMES) + rng.choice(_GIVEN) for _ in range(n)],
            "sfzh": [resident_id(rng) for _ in range(n)],
            "col7": [mobile(rng) for _ in range(n)],  # a name that says nothing
            "shouji": [mobile(rng) for _ in range(n)],
            "ext_info": [f"user{i}@example.{rng.choice(['com', 'cn'])}" for i in range(n)],
            "kh": [bank_card(rng) for _ in range(n)],
            "家庭住址": [address(rng) for _ in range(n)],
            "性别": [rng.choice(["男", "女"]) for _ in range(n)],
            "csrq": [
                f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                for _ in range(n)
            ],
            "remark": [
                f"客户来电称身份证{resident_id(rng)}已挂失, 请核实后处理"
                if i % 10 == 0
                else "正常办理业务, 无特殊情况需要说明, 客户满意"
                for i in range(n)
            ],
            # Look-alikes that are not personal information:
            "order_no": [
                str(13800000000 + i) for i in range(n)
            ],  # consecutive, and each passes the phone check
            "trade_ref": [f"1{rng.randint(0, 9999999999):010d}" for _ in range(n)],  # random 11 digits from 1
            "id_code": [resident_id(rng, valid=False) for _ in range(n)],  # ID shape, wrong check digit
            "company_uscc": [org_code(rng) for _ in range(n)],  # organisations, not people
            "created_at": [f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(n)],
            "city": [rng.choice(["北京", "上海", "张家口", "杭州", "马鞍山"]) for _ in range(n)],
            "status": [rng.choice(["已完成", "处理中", "已取消"]) for _ in range(n)],
            "amount": [round(rng.random() * 1000, 2) for _ in range(n)],
            "sku": [f"SKU-2024-{i:06d}" for i in range(n)],
        }
    )


EXPECTED = {
    ("客户姓名", "PERSON"),
    ("sfzh", "CN_RESIDENT_ID"),
    ("col7", "PHONE_NUMBER"),
    ("shouji", "PHONE_NUMBER"),
    ("ext_info", "EMAIL_ADDRESS"),
    ("kh", "BANK_CARD"),
    ("家庭住址", "ADDRESS"),
    ("性别", "GENDER"),
    ("csrq", "DATE_OF_BIRTH"),
    ("remark", "CN_RESIDENT_ID"),
}


def verdicts(rows: list[dict[str, object]], table_suffix: str = "") -> set[tuple[str, str]]:
    return {(str(r["column"]), str(r["entity"])) for r in rows if str(r["table"]).endswith(table_suffix)}


def load_table(eng: sa.Engine, df: pl.DataFrame, name: str, schema: str | None = None) -> sa.Table:
    md = sa.MetaData()
    cols = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)]
    for c, t in df.schema.items():
        cols.append(sa.Column(c, sa.Float if t == pl.Float64 else sa.String(200)))
    table = sa.Table(name, md, *cols, schema=schema)
    with eng.begin() as conn:
        table.create(conn)
        rows = df.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64)).to_dicts()
        conn.execute(table.insert(), rows)
    return table
