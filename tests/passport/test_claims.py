"""The claim checks on their own: k and l recomputed against a naive count, the sampled inventory, and
the cell scan's handling of pseudonym tokens that happen to look like a card number."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piguard.passport import claims, records


def _naive(rows, l_value, variant, c):
    classes = defaultdict(list)
    for sex, age, flag in rows:
        if not (sex == "*" and age == "*"):
            classes[(sex, age)].append(flag)
    failing = 0
    for values in classes.values():
        counts = sorted(Counter(values).values(), reverse=True)
        if variant == "distinct":
            ok = len(counts) >= l_value
        elif variant == "entropy":
            n = sum(counts)
            ok = -sum(x / n * math.log(x / n) for x in counts) >= math.log(l_value) - 1e-12
        else:
            ok = len(counts) >= l_value and counts[0] < c * sum(counts[l_value - 1 :])
        failing += not ok
    k = min((len(v) for v in classes.values()), default=None)
    return k, len(classes), failing


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["男", "女", "*"]), st.sampled_from(["[20, 30)", "[30, 40)", "*"]),
                       st.sampled_from(["是", "否", "未知"])), min_size=1, max_size=60),
    st.integers(1, 3), st.sampled_from(["distinct", "entropy", "recursive"]),
)  # fmt: skip
def test_k_and_l_match_a_naive_count(tmp_path_factory, rows, l_value, variant):
    path = tmp_path_factory.mktemp("models") / "t.csv"
    path.write_text("性别,年龄,逾期\n" + "".join(f'{a},"{b}",{f}\n' for a, b, f in rows), "utf-8")
    mc = claims.check_models(str(path), "csv", ["性别", "年龄"], [("逾期", l_value, variant, 2.0)])
    k, n_classes, failing = _naive(rows, l_value, variant, 2.0)
    assert mc.k == k
    assert mc.suppressed == sum(1 for a, b, _ in rows if a == "*" and b == "*")
    if k is not None:
        assert mc.classes == n_classes
        assert mc.l_failures[f"逾期:{variant}:{l_value}"] == failing


def test_missing_declared_column_names_it(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(claims.ClaimsError, match="declared column '年龄' is not in the data"):
        claims.check_models(str(p), "csv", ["年龄"], [])


def test_sampled_inventory_reads_a_spread_sample(tmp_path):
    rng = random.Random(7)
    p = tmp_path / "people.csv"
    lines = ["编号,手机号,城市"]
    for i in range(30_000):
        lines.append(
            f"{i},1{rng.choice('3589')}{rng.randrange(10**9):09d},{rng.choice(['北京市', '上海市'])}"
        )
    p.write_text("\n".join(lines) + "\n", "utf-8")
    n = records.text_leaves(p.read_bytes(), "csv")[1]
    inv = claims.inventory([("people.csv", str(p), "csv", n)], full=False, sample_rows=2000)
    assert inv.rows_scanned == 2000 and inv.method == "sampled"
    assert {(r.column, r.entity) for r in inv.rows} >= {("手机号", "PHONE_NUMBER")}


def test_cell_scan_skips_pseudonym_lookalikes_but_not_raw_ids(tmp_path):
    rng = random.Random(3)
    tokens = ["".join(rng.choice("0123456789abcdef") for _ in range(16)) for _ in range(500)]
    tokens[10] = "6228480402564899"  # all digits, Luhn-valid, a bank card prefix: a token by chance
    tokens[20] = "110101199003071233"  # a raw resident ID number slipped into the token column
    p = tmp_path / "d.csv"
    p.write_text("卡号,城市\n" + "".join(f"{t},北京市\n" for t in tokens), "utf-8")
    cs = claims.scan_cells("d.csv", str(p), "csv", 500, full=True)
    assert [(h.record, h.column, h.entity, h.masked) for h in cs.hits] == [
        (21, "卡号", "CN_RESIDENT_ID", "1101**********1233")
    ]
    # In a column of real card numbers the same value is a card number.
    p.write_text("卡号\n6228480402564899\n6217001234567890122\n", "utf-8")
    assert [h.entity for h in claims.scan_cells("d.csv", str(p), "csv", 2, full=True).hits] == [
        "BANK_CARD",
        "BANK_CARD",
    ]


def test_full_cell_scan_finds_what_the_record_by_record_scan_finds(tmp_path):
    rng = random.Random(11)
    rows = [
        f'{rng.randrange(10**6)},"{rng.choice(["北京市", "上海市"])}",{rng.random():.4f}' for _ in range(3000)
    ]
    rows[5] = '7,"line one\nline two 110101199003071233",0.5'  # inside a quoted multi-line field
    rows[1999] = "8,13812345678,0.25"
    rows[2999] = "9,zhang.wei@example.com,0.75"
    p = tmp_path / "t.csv"
    p.write_bytes(("编号,城市,分值\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    n = records.text_leaves(p.read_bytes(), "csv")[1]
    assert n == 3000
    whole = claims.scan_cells("t.csv", str(p), "csv", n, full=True)
    by_record = claims.scan_cells("t.csv", str(p), "csv", n, full=False, sample=n)
    found = [(h.record, h.column, h.entity, h.masked) for h in whole.hits]
    assert found == [(h.record, h.column, h.entity, h.masked) for h in by_record.hits]
    assert [(r, c, e) for r, c, e, _ in found] == [
        (6, "城市", "CN_RESIDENT_ID"), (2000, "城市", "PHONE_NUMBER"), (3000, "城市", "EMAIL_ADDRESS"),
    ]  # fmt: skip
