"""The request types and the data files beside them: refusal reasons (with the articles they rest on) and
complaint categories with the regulators' channels. Rules are data; this module only loads and checks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# type -> (PIPL / 2019-method basis, needs a staff decision)
REQUEST_TYPES: dict[str, tuple[str, bool]] = {
    "access": ("个人信息保护法 第四十四条、第四十五条第一款", False),
    "copy": ("个人信息保护法 第四十五条第一款、第三款", False),
    "correction": ("个人信息保护法 第四十六条", True),
    "deletion": ("个人信息保护法 第四十七条", True),
    "withdraw_consent": ("个人信息保护法 第十五条", False),
    "explain": ("个人信息保护法 第四十八条", False),
    "opt_out_personalization": ("个人信息保护法 第二十四条第二款；算法推荐管理规定 第十七条", False),
    "cancel_account": ("App违法违规收集使用个人信息行为认定方法 六(一)；个人信息保护法 第四十七条", True),
    "complaint": ("App违法违规收集使用个人信息行为认定方法 六(五)；个人信息保护法 第六十五条", True),
}
TYPE_NAMES = {
    "access": ("查阅我的个人信息", "See my personal information"),
    "copy": ("获取副本（JSON / CSV）", "Get a copy (JSON / CSV)"),
    "correction": ("更正", "Correct"),
    "deletion": ("删除", "Delete"),
    "withdraw_consent": ("撤回同意", "Withdraw consent"),
    "explain": ("解释处理规则", "Explain the processing rules"),
    "opt_out_personalization": ("关闭个性化推荐与定向推送", "Turn off personalised recommendation and push"),
    "cancel_account": ("注销账号", "Cancel my account"),
    "complaint": ("投诉", "Complain"),
}


@dataclass(frozen=True)
class Reason:
    code: str
    applies_to: tuple[str, ...]
    zh: str
    en: str
    cites: tuple[dict[str, Any], ...]
    note: str | None = None

    def citation(self) -> str:
        parts = []
        for c in self.cites:
            s = f"{c['law']} 第{c['article']}条"
            if "paragraph" in c:
                s += f"第{c['paragraph']}款"
            if "item" in c:
                s += f"第({c['item']})项"
            parts.append(s)
        return "；".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "cites": list(self.cites),
            "citation": self.citation(),
        }


def _load(name: str, path: str | Path | None) -> Any:
    if path is not None:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return yaml.safe_load(resources.files("piguard.rights").joinpath("data", name).read_text("utf-8"))


@lru_cache(maxsize=4)
def refusal_reasons(path: str | None = None) -> dict[str, Reason]:
    doc = _load("refusal_reasons.yaml", path)
    out: dict[str, Reason] = {}
    for r in doc["reasons"]:
        bad = set(r["applies_to"]) - set(REQUEST_TYPES)
        if bad:
            raise ValueError(f"refusal reason {r['code']}: unknown request types {sorted(bad)}")
        if not r.get("cites"):
            raise ValueError(f"refusal reason {r['code']} cites nothing")
        out[r["code"]] = Reason(
            r["code"],
            tuple(r["applies_to"]),
            r["zh"].strip(),
            r["en"].strip(),
            tuple(r["cites"]),
            r.get("note"),
        )
    return out


@lru_cache(maxsize=4)
def complaint_catalog(path: str | None = None) -> dict[str, Any]:
    doc = _load("complaints.yaml", path)
    routes = doc["routes"]
    for c in doc["categories"]:
        missing = [r for r in c["routes"] if r not in routes]
        if missing:
            raise ValueError(f"complaint category {c['id']}: unknown routes {missing}")
    return doc


def complaint_routes(category: str, path: str | None = None) -> list[dict[str, Any]]:
    doc = complaint_catalog(path)
    for c in doc["categories"]:
        if c["id"] == category:
            return [{"id": r, **doc["routes"][r]} for r in c["routes"]]
    return []
