"""Regenerate examples/data/loan_applicants.csv: synthetic loan applicants (Faker zh_CN, fixed seed).

Every identity here is invented; the resident ID numbers are generated with valid check digits so that the
detectors treat them like real ones.

    python examples/make_loan_applicants.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from faker import Faker

OUT = Path(__file__).parent / "data" / "loan_applicants.csv"
ROWS = 3000
CITIES = {"北京市": "110105", "上海市": "310115", "广州市": "440106", "深圳市": "440304", "成都市": "510107",
          "杭州市": "330106", "武汉市": "420106", "西安市": "610113"}  # fmt: skip
HEADER = [
    "姓名", "手机号", "身份证号", "性别", "年龄", "城市", "职业", "月收入", "贷款金额", "是否逾期",
]  # fmt: skip
JOBS = ["教师", "工程师", "销售", "个体经营", "医生", "司机", "文员", "厨师", "学生", "自由职业"]


def resident_id(region: str, birth: str, rnd: random.Random) -> str:
    body = f"{region}{birth}{rnd.randint(0, 999):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def main() -> None:
    fake = Faker("zh_CN")
    Faker.seed(20241123)
    rnd = random.Random(20241123)
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for _ in range(ROWS):
            city, region = rnd.choice(list(CITIES.items()))
            age = rnd.randint(20, 65)
            birth = f"{2024 - age}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}"
            sex = rnd.choice(["男", "女"])
            w.writerow([
                fake.name_male() if sex == "男" else fake.name_female(),
                fake.phone_number(),
                resident_id(region, birth, rnd),
                sex,
                age,
                city,
                rnd.choice(JOBS),
                rnd.choice([3000, 5000, 8000, 12000, 20000, 35000]),
                rnd.choice([5000, 10000, 20000, 50000, 100000]),
                rnd.choices(["否", "是"], weights=[85, 15])[0],
            ])  # fmt: skip


if __name__ == "__main__":
    main()
