"""``piguard deid`` end to end: report contract, formats, config with operators, bad input, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import polars as pl
import pytest
from deid_checker import check_output
from typer.testing import CliRunner

from piguard.cli import app
from piguard.deid.risk import RiskOptions, risk_report, zayatz
from shared_data import needs_shared, shared_path

ADULT = shared_path("data", "anon", "adult")
pytestmark = needs_shared(ADULT)
QIS = "sex,age,race,marital-status,education,native-country,workclass,occupation"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, ["deid", *map(str, args)])
    return res.exit_code, res.stdout, res.stderr


def test_cli_adult_report_contract_and_html(tmp_path: Path) -> None:
    out, rep, html = tmp_path / "out.csv", tmp_path / "r.json", tmp_path / "r.html"
    code, stdout, stderr = run(
        ADULT / "adult.csv",
        "--out",
        out,
        "--quasi",
        QIS,
        "--hierarchies",
        ADULT,
        "--k",
        5,
        "--l-diversity",
        "salary-class:2",
        "--t-closeness",
        "salary-class:0.2",
        "--suppression",
        0.01,
        "--report",
        rep,
        "--html",
        html,
    )
    assert code == 0, stderr
    r = json.loads(rep.read_text(encoding="utf-8"))
    # The keys of the first report version stay; later versions only add to them.
    assert set(r) >= {
        "models",
        "levels",
        "suppressed_rows",
        "equivalence_classes",
        "min_class_size",
        "risk",
        "utility",
    }
    from test_deid_safety import schema

    jsonschema.Draft202012Validator(schema()).validate(r)
    assert set(r["risk"]["prosecutor"]) == {"highest", "average", "records_at_risk"}
    assert set(r["risk"]) >= {"prosecutor", "journalist", "marketer"}
    assert list(r["levels"]) == QIS.split(",")
    df = pl.read_csv(out, separator=";", infer_schema=False)  # ARX's delimiter kept
    qis = QIS.split(",")
    assert (
        check_output(
            df,
            qis,
            k=5,
            suppression=0.01,
            l_div=[("salary-class", 2, "distinct", 1.0)],
            t_close=[("salary-class", 0.2)],
        )
        == []
    )
    sizes = df.filter(~pl.all_horizontal([pl.col(q) == "*" for q in qis])).group_by(qis).len()["len"]
    assert r["risk"]["prosecutor"]["highest"] == pytest.approx(1 / r["min_class_size"])
    assert r["min_class_size"] <= sizes.min()
    assert "<table>" in html.read_text(encoding="utf-8") and "prosecutor" in html.read_text(encoding="utf-8")
    assert "levels" in stdout


def test_cli_config_with_operators_tsv_and_parquet(tmp_path: Path) -> None:
    src = pl.DataFrame(
        {
            "name": ["张三", "李四", "欧阳娜娜", "王五", "赵六", "钱七"] * 5,
            "phone": [f"1380013{i:04d}" for i in range(30)],
            "id": [f"1101051949123{i:04d}X"[:18] for i in range(30)],
            "age": [str(20 + i % 40) for i in range(30)],
            "city": ["杭州", "宁波", "南京"] * 10,
            "diagnosis": ["flu", "cold", "asthma"] * 10,
            "visit": ["2024-01-10", "2024-02-11"] * 15,
        }
    )
    tsv = tmp_path / "in.tsv"
    src.write_csv(tsv, separator="\t")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "phone.key").write_text("ab" * 32)
    (tmp_path / "keys" / "id.key").write_text("cd" * 32)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "city.csv").write_text("杭州;浙江;*\n宁波;浙江;*\n南京;江苏;*\n", encoding="utf-8")
    cfg = tmp_path / "deid.yaml"
    cfg.write_text(
        "quasi: [age, city]\n"
        "hierarchy_dir: h\n"
        "hierarchies:\n  age: {auto: intervals, widths: [5, 10, 20]}\n"
        "models: {k: 3, l_diversity: [{column: diagnosis, l: 2}]}\n"
        "columns:\n"
        "  name: {op: mask, keep_surname: true}\n"
        "  phone: {op: pseudonym, key_file: keys/phone.key}\n"
        "  id: {op: ff1, key_file: keys/id.key}\n"
        "  visit: {op: drop}\n",
        encoding="utf-8",
    )
    for out in (tmp_path / "out.tsv", tmp_path / "out.parquet"):
        code, _, stderr = run(tsv, "--out", out, "--config", cfg, "--report", tmp_path / "r.json")
        assert code == 0, stderr
        df = (
            pl.read_parquet(out)
            if out.suffix == ".parquet"
            else pl.read_csv(out, separator="\t", infer_schema=False)
        )
        assert "visit" not in df.columns
        assert df["name"][2] == "欧阳**"
        assert df["phone"].n_unique() == 30 and not df["phone"].str.starts_with("138").any()
        assert df["id"].str.len_chars().to_list() == [18] * 30 and df["id"][0] != src["id"][0]
        assert check_output(df, ["age", "city"], k=3, l_div=[("diagnosis", 2, "distinct", 1.0)]) == []
    rep = (tmp_path / "r.json").read_text(encoding="utf-8")
    assert "cd" * 32 not in rep and "ab" * 32 not in rep  # keys never reach the report
    # Parquet input works too.
    src.write_parquet(tmp_path / "in.parquet")
    args = [tmp_path / "in.parquet", "--out", tmp_path / "again.csv", "--quasi", "city"]
    args += [
        "--hierarchies",
        tmp_path / "h",
        "--k",
        11,
        "--suppression",
        0.34,
        "--report",
        tmp_path / "r2.json",
    ]
    # age is a quasi-identifier the scanner flags: left out of --quasi, the run refuses and names it.
    code, _, stderr = run(*args)
    assert code == 1 and "age (AGE)" in stderr and not (tmp_path / "again.csv").exists()
    code, _, stderr = run(*args, "--keep", "age")
    assert code == 0, stderr
    again = pl.read_csv(tmp_path / "again.csv")
    assert again["city"].value_counts(sort=True).rows() == [("浙江", 20), ("*", 10)]
    # Direct identifiers nobody configured are dropped by default; age is released as asked.
    # (The "id" values fail the resident ID check digit: nothing flags them, so they pass through.)
    assert set(again.columns) == {"age", "city", "diagnosis", "visit", "id"}
    rep2 = json.loads((tmp_path / "r2.json").read_text(encoding="utf-8"))
    assert {c: rep2["columns"][c]["treatment"] for c in ("name", "phone")} == {
        "name": "drop",
        "phone": "drop",
    }
    assert {"column": "id", "origin": "none", "detected": []} in rep2["passed_through"]
    assert {"column": "age", "origin": "keep", "detected": ["AGE"]} in rep2["passed_through"]
    assert rep2["declared_state"] == "pseudonymized"  # a quasi-identifier outside the model


def test_init_config_drafts_from_taxonomy(tmp_path: Path) -> None:
    src = pl.DataFrame(
        {
            "姓名": ["张三", "李四"] * 10,
            "手机": [f"1380013{i:04d}" for i in range(20)],
            "年龄": [str(30 + i) for i in range(20)],
            "性别": ["男", "女"] * 10,
            "诊断": ["flu", "cold"] * 10,
        }
    )
    p = tmp_path / "in.csv"
    src.write_csv(p)
    draft = tmp_path / "deid.yaml"
    code, _, stderr = run(p, "--init-config", draft)
    assert code == 0, stderr
    import yaml

    cfg = yaml.safe_load(draft.read_text(encoding="utf-8"))
    assert cfg["columns"]["手机"]["op"] == "pseudonym"
    assert cfg["columns"]["姓名"]["op"] == "drop"
    assert set(cfg["quasi"]) == {"年龄", "性别"}
    assert cfg["hierarchies"]["年龄"]["auto"] == "intervals"
    assert cfg["models"]["l_diversity"][0]["column"] == "诊断"
    # The draft runs once the key file exists.
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "手机.key").write_text("ef" * 32)
    code, _, stderr = run(p, "--out", tmp_path / "o.csv", "--config", draft, "--k", 2)
    assert code == 0, stderr


@pytest.mark.parametrize("case", ["k_too_big", "missing_value", "bad_csv", "bad_key", "no_input", "bad_l"])
def test_cli_bad_input_exit_2_and_no_output(tmp_path: Path, case: str) -> None:
    out = tmp_path / "out.csv"
    src = tmp_path / "in.csv"
    src.write_text("sex;age;salary-class\nMale;39;<=50K\nFemale;41;>50K\n", encoding="utf-8")
    args: list[object] = [src, "--out", out, "--quasi", "sex,age", "--hierarchies", ADULT]
    if case == "k_too_big":
        args += ["--k", 3]
        expect = "k=3 is larger than the table (2 rows)"
    elif case == "missing_value":
        src.write_text("sex;age\nMale;39\nAlien;41\n", encoding="utf-8")
        expect = "column 'sex': value A**** is missing from its hierarchy"
    elif case == "bad_csv":
        src.write_bytes(b"sex;age\nMale;39;extra;fields\n")
        expect = "malformed table"
    elif case == "bad_key":
        cfg = tmp_path / "c.yaml"
        cfg.write_text("columns:\n  salary-class: {op: pseudonym, key_file: nokey.key}\n")
        args += ["--config", cfg]
        expect = "key file"
    elif case == "no_input":
        args[0] = tmp_path / "nope.csv"
        expect = "input table not found"
    else:
        args += ["--l-diversity", "salary-class"]
        expect = "expected COLUMN:L"
    code, _, stderr = run(*args)
    assert code == 2
    assert expect in stderr and "Traceback" not in stderr
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


def test_risk_figures_from_class_sizes() -> None:
    sizes = pl.Series([1, 2, 5]).to_numpy()
    cls = pl.Series([0, 1, 1, 2, 2, 2, 2, 2, -1]).to_numpy()
    r = risk_report(sizes, cls, 9)
    p = r["prosecutor"]
    assert p["highest"] == 1.0 and p["records_at_risk"] == 3  # 1/1 and 1/2 exceed 0.2; 1/5 does not
    assert p["average"] == pytest.approx((1 + 0.5 * 2 + 0.2 * 5) / 8)
    assert r["sample_uniques"]["records"] == 1 and r["records_released"] == 8
    # With the whole population released (pi = 1), journalist equals prosecutor and every sample unique is
    # a population unique.
    whole = risk_report(sizes, cls, 9, RiskOptions(population=8))
    assert whole["journalist"]["highest"] == 1.0
    assert whole["marketer"]["average"] == pytest.approx(3 / 8)
    assert zayatz(sizes, 8, 8) == 1.0
    # A tiny sample of a huge population: sample uniques are rarely population uniques.
    assert 0 < zayatz(sizes, 8, 1_000_000) < 1.0


def test_gb18030_xlsx_and_jsonl_inputs(tmp_path: Path) -> None:
    text = "城市,诊断\n杭州,flu\n宁波,cold\n南京,flu\n南京,cold\n"
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "城市.csv").write_text("杭州;浙江;*\n宁波;浙江;*\n南京;江苏;*\n", encoding="utf-8")
    gb = tmp_path / "gb.csv"
    gb.write_bytes(text.encode("gb18030"))
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for line in text.strip().splitlines():
        ws.append(line.split(","))
    wb.save(tmp_path / "in.xlsx")
    pl.read_csv(gb, encoding="gb18030").write_ndjson(tmp_path / "in.jsonl")
    for src in (gb, tmp_path / "in.xlsx", tmp_path / "in.jsonl"):
        out = tmp_path / f"out_{src.suffix[1:]}.csv"
        code, _, stderr = run(src, "--out", out, "--quasi", "城市", "--hierarchies", tmp_path / "h", "--k", 2)
        assert code == 0, (src, stderr)
        assert sorted(pl.read_csv(out)["城市"].to_list()) == ["江苏", "江苏", "浙江", "浙江"]


def test_html_report_escapes_column_names(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("<img onerror=alert(1)>,v\na,1\na,2\n", encoding="utf-8")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "<img onerror=alert(1)>.csv").write_text("a;*\n", encoding="utf-8")
    html = tmp_path / "r.html"
    code, _, stderr = run(
        src,
        "--out",
        tmp_path / "o.csv",
        "--quasi",
        "<img onerror=alert(1)>",
        "--hierarchies",
        tmp_path / "h",
        "--k",
        2,
        "--html",
        html,
    )
    assert code == 0, stderr
    page = html.read_text(encoding="utf-8")
    assert "<img" not in page and "&lt;img onerror=alert(1)&gt;" in page


def test_population_uniqueness_estimators_on_a_simulated_population() -> None:
    """A Zipf-distributed population of 200,000 records, sampled at 10 %: both estimators land within 50 %
    of the true figures (Pitman: population uniques; Zayatz: sample uniques unique in the population)."""
    import numpy as np

    from piguard.deid.risk import pitman

    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        sizes = rng.zipf(1.6, 60000)
        labels = np.repeat(np.arange(len(sizes)), np.minimum(sizes, 5000))[:200_000]
        lab, pop_sizes = np.unique(labels, return_counts=True)
        sample = rng.choice(labels, len(labels) // 10, replace=False)
        s_lab, s_sizes = np.unique(sample, return_counts=True)
        true_pop_uniques = int((pop_sizes == 1).sum())
        true_z = int((pop_sizes[np.searchsorted(lab, s_lab[s_sizes == 1])] == 1).sum())
        est_p = pitman(s_sizes, len(sample), len(labels))
        est_z = zayatz(s_sizes, len(sample), len(labels))
        assert est_p is not None and 0.66 < est_p / true_pop_uniques < 1.5
        assert 0.66 < est_z / true_z < 1.5


def test_config_date_shift_top_bottom_and_fixed_generalization(tmp_path: Path) -> None:
    src = tmp_path / "ops.csv"
    src.write_text(
        "pid,visit,income,city,age\np1,2024-01-10,120000,杭州,33\np1,2024-01-20,500,宁波,33\n"
        "p2,2024-03-01,50000,南京,41\np2,2024-03-05,60000,南京,41\n",
        encoding="utf-8",
    )
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "city.csv").write_text("杭州;浙江;*\n宁波;浙江;*\n南京;江苏;*\n", encoding="utf-8")
    (tmp_path / "shift.key").write_bytes(b"q" * 32)
    cfg = tmp_path / "ops.yaml"
    cfg.write_text(
        "hierarchy_dir: h\nquasi: [age]\nhierarchies:\n  age: {auto: intervals, widths: [10, 20]}\n"
        "models: {k: 2}\ncolumns:\n"
        "  visit: {op: date_shift, key_file: shift.key, subject: pid, max_days: 10}\n"
        "  income: {op: top_bottom, top: 100000, bottom: 1000}\n"
        "  city: {op: generalize, level: 1}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"
    code, _, stderr = run(src, "--out", out, "--config", cfg)
    assert code == 0, stderr
    df = pl.read_csv(out, infer_schema=False)
    assert df["income"].to_list() == [">=100000", "<=1000", "50000", "60000"]
    assert df["city"].to_list() == ["浙江", "浙江", "江苏", "江苏"]
    from datetime import date

    d = [date.fromisoformat(x) for x in df["visit"].to_list()]
    assert (d[1] - d[0]).days == 10 and (d[3] - d[2]).days == 4
    assert 0 < abs((d[0] - date(2024, 1, 10)).days) <= 10
