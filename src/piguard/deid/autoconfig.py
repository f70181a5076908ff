"""Draft a de-identification config from the data: what each column holds (detectors on a sample of its
values, then column-name hints) and the taxonomy's role for it (direct / quasi identifier, sensitive).

Direct identifiers are pseudonymized (joinable identifiers) or dropped (names, addresses, biometrics);
quasi-identifiers get an automatic hierarchy and join the search; sensitive attributes are protected by
distinct 2-diversity. The user reviews and edits the YAML before running it.
"""

from __future__ import annotations

import re

import polars as pl

from piguard import taxonomy
from piguard.deid.config import DeidConfig, config_to_yaml
from piguard.deid.lattice import Models
from piguard.deid.models import LDiversity

SAMPLE = 1000
MIN_SHARE = 0.6

# Column-name hints (lower-cased substring -> entity id), for columns detectors cannot recognize by value.
NAME_HINTS: list[tuple[str, str]] = [
    (r"身份证|id_?card|id_?no|resident_?id|sfz", "CN_RESIDENT_ID"),
    (r"手机|电话|phone|mobile|tel", "PHONE_NUMBER"),
    (r"邮箱|e-?mail", "EMAIL_ADDRESS"),
    (r"姓名|^name$|full_?name|real_?name", "PERSON"),
    (r"地址|住址|address|addr", "ADDRESS"),
    (r"出生|birth|dob", "DATE_OF_BIRTH"),
    (r"年龄|^age$", "AGE"),
    (r"性别|^sex$|gender", "GENDER"),
    (r"民族|ethnic|race", "ETHNICITY"),
    (r"学历|education|degree", "EDUCATION"),
    (r"婚姻|marital", "MARITAL_STATUS"),
    (r"诊断|疾病|病|diagnos|disease|health", "HEALTH_INFO"),
    (r"收入|工资|薪|income|salary", "INCOME"),
    (r"邮编|邮政编码|post_?code|zip", "POSTCODE"),
]

PSEUDONYMIZE = {
    "CN_RESIDENT_ID",
    "CN_PASSPORT",
    "CN_HK_MACAO_PERMIT",
    "CN_TW_PERMIT",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "BANK_CARD",
    "MAC_ADDRESS",
    "IMEI",
    "CN_LICENCE_PLATE",
    "ACCOUNT_ID",
    "DEVICE_ID",
}


def detect_column(name: str, values: pl.Series) -> str | None:
    """Entity id for a column: the detectors' majority on a sample, else a name hint."""
    sample = values.drop_nulls().cast(pl.String)
    sample = sample.filter(sample.str.strip_chars() != "").head(SAMPLE)
    if len(sample):
        from piguard.detect import classify_values

        ents = classify_values(sample)["entity"].drop_nulls()
        if len(ents):
            top = ents.value_counts(sort=True).row(0)
            if top[1] / len(sample) >= MIN_SHARE:
                return str(top[0])
    low = name.lower()
    for pattern, ent in NAME_HINTS:
        if re.search(pattern, low):
            return ent
    return None


def draft_config(df: pl.DataFrame, *, k: int = 5) -> tuple[DeidConfig, dict[str, str]]:
    """(config, entities per column) for ``df``: the same column classifier the run uses decides, with
    column-name hints for what it leaves open, so the draft runs as drafted."""
    from piguard.deid.infer import infer_spec
    from piguard.deid.safety import classify_table

    cfg = DeidConfig(models=Models(k=k))
    found: dict[str, str] = {}
    l_div: list[LDiversity] = []
    audit = classify_table(df)
    for col in df.columns:
        a = audit[col]
        ents = a.entities or ([e] if (e := detect_column(col, df[col])) else [])
        if a.free_text and not any(_identifier(e) in ("direct", "quasi") for e in ents):
            ents = []  # free text without identifiers (comments, product names) stays as it is
        if not ents:
            continue
        found[col] = ", ".join(ents)
        roles = {_identifier(e) for e in ents}
        if a.free_text:
            cfg.columns[col] = {"op": "mask_text"}
        elif "direct" in roles:
            ent = next(e for e in ents if _identifier(e) == "direct")
            if ent in PSEUDONYMIZE:
                key = f"keys/{_safe(col)}.key"
                cfg.columns[col] = {"op": "pseudonym", "key_file": key, "create_key": True, "length": 16}
            else:
                cfg.columns[col] = {"op": "drop"}
        elif "quasi" in roles:
            cfg.quasi.append(col)
            spec = infer_spec(col, df[col])
            spec.pop("reason", None)
            cfg.hierarchies[col] = spec
        elif any(_sensitive(e) for e in ents):
            l_div.append(LDiversity(col, 2, "distinct"))
    cfg.models.l_diversity = l_div
    return cfg, found


def _identifier(entity: str) -> str:
    try:
        return str(taxonomy.get(entity).identifier)
    except taxonomy.UnknownEntity:  # an entity id the taxonomy does not know (e.g. POSTCODE): quasi
        return "quasi"


def _sensitive(entity: str) -> bool:
    try:
        return bool(taxonomy.get(entity).sensitive)
    except taxonomy.UnknownEntity:
        return False


def _safe(col: str) -> str:
    return re.sub(r"[^\w.-]", "_", col)


def draft_yaml(df: pl.DataFrame, source: str, *, k: int = 5) -> str:
    cfg, found = draft_config(df, k=k)
    lines = [
        f"# piguard deid: draft configuration for {source}. Review before use.",
        "# Detected columns (entity id from piguard's taxonomy):",
    ]
    lines += [f"#   {c}: {e}" for c, e in found.items()] or ["#   (none)"]
    lines += [
        "# Key files marked create_key are made on the first run (32 random bytes as hex, mode 0600) and",
        "# the run says where; keep them out of the delivered data and reuse them for joinable pseudonyms.",
        "# Hierarchies marked auto are built from the values.",
        "",
    ]
    return config_to_yaml(cfg, "\n".join(lines) + "\n")
