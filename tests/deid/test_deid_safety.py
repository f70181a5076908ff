"""Safe by default (issue 29, section 2): the README's quick form works without hierarchy files, every
flagged column is treated or the run refuses naming it, the output is re-scanned, the report says what was
passed through and claims "anonymized" only when nothing identifying remains; drafted configs run as
drafted. Reports are checked against the published JSON Schema."""

from __future__ import annotations

import json
import os
import random
from importlib import resources
from pathlib import Path

import jsonschema
import polars as pl
import pytest
from typer.testing import CliRunner

from piguard import scan_text
from piguard.cli import app

runner = CliRunner()
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马胡朱郭何罗高林"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "秀英",
]
CITIES = ["杭州市", "宁波市", "南京市", "苏州市", "上海市", "北京市"]
REGIONS = ["330106", "330203", "320102", "320505", "310115", "110105"]


def resident_id(rng: random.Random) -> str:
    """A resident ID with a valid birth date and ISO 7064 MOD 11-2 check character (GB 11643)."""
    body = f"{rng.choice(REGIONS)}{rng.randint(1960, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def customers(n: int = 300, seed: int = 5) -> pl.DataFrame:
    rng = random.Random(seed)

    def name() -> str:
        return rng.choice(SURNAMES) + rng.choice(GIVEN)

    def phone() -> str:
        return "1" + rng.choice("3578") + "".join(rng.choice("0123456789") for _ in range(9))

    rows = []
    for _ in range(n):
        nm, ph = name(), phone()
        note = rng.choice(
            [
                f"客户{nm}来电，手机{ph}，要求延期还款",
                f"联系人{name()}，电话{phone()}",
                "资料齐全",
                f"已致电{ph}确认",
            ]
        )
        rows.append(
            {
                "姓名": nm,
                "身份证号": resident_id(rng),
                "手机号": ph,
                "性别": rng.choice("男女"),
                "年龄": str(rng.randint(20, 65)),
                "城市": rng.choice(CITIES),
                "月收入": str(rng.choice([3000, 5000, 8000, 12000])),
                "备注": note,
            }
        )
    return pl.DataFrame(rows)


def run(*args: object) -> tuple[int, str, str]:
    res = runner.invoke(app, ["deid", *map(str, args)])
    return res.exit_code, res.stdout, res.stderr


def schema() -> dict:
    text = resources.files("piguard.schemas").joinpath("deid-report.schema.json").read_text("utf-8")
    return json.loads(text)


def valid_report(path: Path) -> dict:
    rep = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema()).validate(rep)
    return rep


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    d = tmp_path_factory.mktemp("safety")
    df = customers()
    df.write_csv(d / "data.csv")
    return d / "data.csv", df


def test_readme_quick_form_treats_every_flagged_column(
    tmp_path: Path, table: tuple[Path, pl.DataFrame]
) -> None:
    src, df = table
    out, rep_path = tmp_path / "delivered.csv", tmp_path / "r.json"
    html = tmp_path / "r.html"
    code, stdout, stderr = run(
        src, "--out", out, "--quasi", "性别,年龄,城市", "--k", 5, "--report", rep_path, "--html", html
    )
    assert code == 0, stderr
    page = html.read_text(encoding="utf-8")
    assert "Declared state: anonymized" in page and "Passed through unchanged" in page
    delivered = pl.read_csv(out, infer_schema=False)
    rep = valid_report(rep_path)
    # Direct identifiers nobody configured are dropped; the free-text column is masked through the detectors.
    assert not {"姓名", "身份证号", "手机号"} & set(delivered.columns)
    assert {rep["columns"][c]["treatment"] for c in ("姓名", "身份证号", "手机号")} == {"drop"}
    assert rep["columns"]["备注"]["treatment"] == "mask_text"
    notes = "\n".join(delivered["备注"].to_list())
    assert "[PHONE_NUMBER]" in notes and "[PERSON]" in notes
    leftover = [
        f for v in delivered["备注"].to_list() for f in scan_text(v, entities=["PHONE_NUMBER", "PERSON"])
    ]
    assert leftover == []
    for phone in df["手机号"].to_list()[:50]:
        assert phone not in notes
    # Hierarchies were built from the values: sex, age bands, city -> province.
    kinds = {q["column"]: q["hierarchy"]["kind"] for q in rep["quasi_identifiers"]}
    assert kinds == {"性别": "sex", "年龄": "intervals", "城市": "place"}
    assert all(len(q["hierarchy"]["sha256"]) == 64 for q in rep["quasi_identifiers"])
    assert check_k(delivered, ["性别", "年龄", "城市"], 5)
    # The report lists what passed through unchanged (月收入, a non-identifying attribute) and the re-scan.
    passed = {p["column"]: p for p in rep["passed_through"]}
    assert passed["月收入"]["detected"] == ["INCOME"]
    assert rep["rescan"]["direct_identifiers"] == []
    assert rep["declared_state"] == "anonymized"
    assert "declared state: anonymized" in stdout


def check_k(df: pl.DataFrame, qis: list[str], k: int) -> bool:
    kept = df.filter(~pl.all_horizontal([pl.col(q) == "*" for q in qis]))
    return kept.group_by(qis).len()["len"].min() >= k


def test_untreated_quasi_identifier_is_refused_by_name(
    tmp_path: Path, table: tuple[Path, pl.DataFrame]
) -> None:
    src, _ = table
    out = tmp_path / "o.csv"
    code, _, stderr = run(
        src, "--out", out, "--quasi", "性别,年龄", "--k", 5, "--report", tmp_path / "r.json"
    )
    assert code == 1
    assert "城市 (COARSE_LOCATION)" in stderr and "--keep" in stderr and "Traceback" not in stderr
    assert not out.exists() and not (tmp_path / "r.json").exists()


def test_kept_direct_identifier_is_declared_raw(tmp_path: Path, table: tuple[Path, pl.DataFrame]) -> None:
    src, _ = table
    rep_path = tmp_path / "r.json"
    code, stdout, stderr = run(
        src,
        "--out",
        tmp_path / "o.csv",
        "--quasi",
        "性别,年龄,城市",
        "--k",
        5,
        "--keep",
        "手机号",
        "--report",
        rep_path,
    )
    assert code == 0, stderr
    rep = valid_report(rep_path)
    assert rep["declared_state"] == "raw"
    assert any("手机号" in r and "PHONE_NUMBER" in r for r in rep["state_reasons"])
    assert {"column": "手机号", "origin": "keep", "detected": ["PHONE_NUMBER"]} in [
        {k: p[k] for k in ("column", "origin", "detected")} for p in rep["passed_through"]
    ]
    assert "手机号" in rep["rescan"]["direct_identifiers"]
    assert "declared state: raw" in stdout


def test_rescan_stops_an_operator_that_leaves_identifiers(
    tmp_path: Path, table: tuple[Path, pl.DataFrame]
) -> None:
    src, _ = table
    cfg = tmp_path / "c.yaml"
    # A mask whose fill character is a digit leaves valid-looking phone numbers (138 0000 5678).
    cfg.write_text(
        "columns:\n  手机号: {op: mask, keep_first: 3, keep_last: 4, char: '0'}\n", encoding="utf-8"
    )
    out = tmp_path / "o.csv"
    code, _, stderr = run(src, "--out", out, "--quasi", "性别,年龄,城市", "--k", 5, "--config", cfg)
    assert code == 1
    assert "re-scan" in stderr and "手机号 (PHONE_NUMBER)" in stderr
    assert not out.exists()


def test_drafted_config_runs_as_drafted_and_creates_keys(
    tmp_path: Path, table: tuple[Path, pl.DataFrame]
) -> None:
    src, _ = table
    draft = tmp_path / "deid.yaml"
    code, _, stderr = run(src, "--init-config", draft)
    assert code == 0, stderr
    import yaml

    cfg = yaml.safe_load(draft.read_text(encoding="utf-8"))
    assert set(cfg["quasi"]) == {"性别", "年龄", "城市"}
    assert cfg["columns"]["备注"] == {"op": "mask_text"}
    assert cfg["columns"]["手机号"]["create_key"] is True
    rep_path, out = tmp_path / "r.json", tmp_path / "o.csv"
    code, stdout, stderr = run(src, "--out", out, "--config", draft, "--report", rep_path)
    assert code == 0, stderr
    key = tmp_path / "keys" / "手机号.key"
    assert key.exists() and (os.stat(key).st_mode & 0o777) == 0o600
    assert f"created key file {key}" in stdout
    rep = valid_report(rep_path)
    assert rep["utility"]["columns"]["手机号"]["key_created"] == str(key)
    assert rep["declared_state"] == "pseudonymized"  # keyed pseudonyms are linkable (PIPL Art. 73)
    first = pl.read_csv(out, infer_schema=False)["手机号"]
    assert not first.str.contains(r"^1\d{10}$").any()
    # A second run reuses the key: the same pseudonyms, no new key.
    code, stdout, _ = run(src, "--out", tmp_path / "o2.csv", "--config", draft)
    assert code == 0 and "created key file" not in stdout
    assert pl.read_csv(tmp_path / "o2.csv", infer_schema=False)["手机号"].equals(first)


def test_missing_key_without_create_key_says_how(tmp_path: Path, table: tuple[Path, pl.DataFrame]) -> None:
    src, _ = table
    cfg = tmp_path / "c.yaml"
    cfg.write_text("columns:\n  手机号: {op: pseudonym, key_file: k/phone.key}\n", encoding="utf-8")
    code, _, stderr = run(
        src, "--out", tmp_path / "o.csv", "--quasi", "性别,年龄,城市", "--k", 5, "--config", cfg
    )
    assert code == 2
    assert "openssl rand -hex 32" in stderr and "create_key: true" in stderr
    assert not (tmp_path / "k" / "phone.key").exists()
