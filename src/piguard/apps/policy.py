"""Policy facts: a privacy policy (text, HTML or PDF, in any common encoding) split into sentences, each
sentence classified into the CAPP-130 practice labels, and the declarations the audit checks the APK against:
personal-information types (taxonomy ids), purposes, SDKs and third parties named, retention, the user-rights
channels (deletion, correction, cancellation, withdrawal, complaint), the promised response time, contact
details (masked), and wording that bundles consent (2019 method C4.5).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from piguard.apps.classifier import PolicyClassifier, load_default

MAX_POLICY_BYTES = 32 * 1024**2
MAX_SENTENCE = 400  # characters: longer runs are cut, so one huge line cannot dominate
_SENT_END = re.compile(r"(?<=[。！？!?；;])|\n+|(?<=\.)\s+(?=[A-Z])")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CLAUSE = re.compile(r"[，,；;：:]")
# Characters written differently in traditional and simplified Chinese (to tell the two scripts apart).
_TRAD = set("們個與資訊隱私權處應將條護認證務開關於為號碼業聯絡請讀錄還銀額時間會請這進發動")
_SIMP = set("们个与资讯隐私权处应将条护认证务开关于为号码业联络请读录还银额时间会请这进发动")
_TRAD_ONLY = _TRAD - _SIMP
_SIMP_ONLY = _SIMP - _TRAD
_DAYS = re.compile(r"(\d{1,3}|[一二两三四五六七八九十]{1,3})\s*个?\s*(工作日|个工作日|自然日|日|天)")
_ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<!\d)(?:400|800)[- ]?\d{3}[- ]?\d{4}(?!\d)|(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"
)


class PolicyError(ValueError):
    """The policy file cannot be read; the message names the file and the reason."""


@cache
def terms() -> dict[str, Any]:
    return yaml.safe_load(
        resources.files("piguard.apps").joinpath("data/policy_terms.yaml").read_text("utf-8")
    )


def _zh_int(s: str) -> int:
    if s.isdigit():
        return int(s)
    if s == "十":
        return 10
    if s.startswith("十"):
        return 10 + _ZH_NUM.get(s[1:], 0)
    if "十" in s:
        a, _, b = s.partition("十")
        return _ZH_NUM.get(a, 1) * 10 + (_ZH_NUM.get(b, 0) if b else 0)
    return _ZH_NUM.get(s, 0)


def _decode(data: bytes, name: str) -> str:
    # The scanner's sniffing (piguard.sources.encoding): a byte-order mark believed only when the text fits,
    # damaged UTF-8 kept as UTF-8, GBK and GB2312 read as GB18030 (the usual encodings of Chinese policies).
    from piguard.sources.encoding import SNIFF_BYTES, NotText, sniff

    try:
        found = sniff(data[:SNIFF_BYTES])
    except NotText as exc:
        raise PolicyError(f"{name}: {exc}") from None
    return data[found.skip :].decode(found.codec, errors="replace")


def _html_text(data: bytes, name: str) -> str:
    import lxml.html

    # Decode first (UTF-8, GB18030, sniffed): lxml guesses Latin-1 for bytes without a charset declaration.
    text = re.sub(r"^\s*<\?xml[^>]*>", "", _decode(data, name))
    try:
        doc = lxml.html.document_fromstring(text)
    except Exception as exc:  # lxml raises ParserError and ValueError for empty or broken documents
        raise PolicyError(f"{name}: unreadable HTML ({type(exc).__name__})") from None
    for bad in doc.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    for br in doc.xpath("//br|//p|//div|//li|//tr|//h1|//h2|//h3|//h4|//h5|//h6"):
        br.tail = "\n" + (br.tail or "")
    return doc.text_content()


def _pdf_text(data: bytes, name: str) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - the [apps] extra brings pypdf
        raise PolicyError(f"{name}: reading PDF needs pypdf (pip install 'piguard[apps]')") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise PolicyError(f"{name}: encrypted PDF")
        text = "\n".join((page.extract_text() or "") for page in reader.pages[:500])
    except PolicyError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PolicyError(f"{name}: unreadable PDF ({type(exc).__name__})") from None
    if not text.strip():
        raise PolicyError(f"{name}: PDF without a text layer (scanned pages need OCR first)")
    return text


def policy_text(data: bytes, name: str = "<policy>") -> str:
    """The policy's plain text from the bytes of a text, HTML or PDF file."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{name}: larger than {MAX_POLICY_BYTES // 1024**2} MiB")
    if data.startswith(b"%PDF"):
        return _pdf_text(data, name)
    head = data[:2048].lstrip().lower()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    looks_html = (
        head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<body" in head or b"<p>" in head
    )
    if looks_html or name.lower().endswith((".html", ".htm", ".xhtml")):
        return _html_text(data, name)
    return _decode(data, name)


def read_policy(path: str | Path) -> str:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"{p}: larger than {MAX_POLICY_BYTES // 1024**2} MiB")
        data = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return policy_text(data, str(p))


def sentences(text: str) -> list[str]:
    out = []
    for piece in _SENT_END.split(text):
        s = " ".join(piece.split())
        if len(s) >= 4:
            out.extend(s[i : i + MAX_SENTENCE] for i in range(0, len(s), MAX_SENTENCE))
    return out


def _script(text: str) -> str:
    cjk = len(_CJK.findall(text))
    if cjk < max(20, len(text) * 0.1):
        return "non_chinese"
    trad = sum(1 for ch in text if ch in _TRAD_ONLY)
    simp = sum(1 for ch in text if ch in _SIMP_ONLY)
    return "traditional" if trad > simp else "simplified"


@dataclass
class PolicyFacts:
    source: str
    sentences: list[str]
    labels: list[list[str]]
    script: str
    declared_entities: dict[str, list[int]] = field(default_factory=dict)  # entity -> sentence indexes
    denied_entities: dict[str, list[int]] = field(default_factory=dict)
    declared_api_kinds: dict[str, list[int]] = field(default_factory=dict)
    denied_api_kinds: dict[str, list[int]] = field(default_factory=dict)
    declared_groups: dict[str, list[int]] = field(default_factory=dict)
    entity_purposes: dict[str, list[str]] = field(default_factory=dict)
    entity_optional: dict[str, bool] = field(default_factory=dict)
    purposes: list[str] = field(default_factory=list)
    sdks_named: dict[str, list[int]] = field(default_factory=dict)
    third_party_sentences: list[int] = field(default_factory=list)
    retention: list[int] = field(default_factory=list)
    channels: dict[str, list[int]] = field(default_factory=dict)
    response_days: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, str]] = field(default_factory=list)
    bundled_consent: list[int] = field(default_factory=list)
    unreasonable_conditions: list[dict[str, Any]] = field(default_factory=list)
    change_notice: list[int] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)

    def quote(self, i: int, limit: int = 160) -> str:
        s = self.sentences[i]
        return s if len(s) <= limit else s[: limit - 1] + "…"

    @property
    def has_collection_rules(self) -> bool:
        return self.label_counts.get("collection", 0) + self.label_counts.get("permission", 0) > 0 or bool(
            self.declared_entities
        )

    @property
    def max_response_working_days(self) -> float | None:
        if not self.response_days:
            return None
        return max(d["working_days"] for d in self.response_days)

    def as_dict(self) -> dict[str, Any]:
        def refs(d: dict[str, list[int]]) -> dict[str, list[str]]:
            return {k: [self.quote(i) for i in v[:3]] for k, v in d.items()}

        return {
            "source": self.source,
            "sentences": len(self.sentences),
            "script": self.script,
            "labels": self.label_counts,
            "declared_entities": sorted(self.declared_entities),
            "denied_entities": sorted(self.denied_entities),
            "declared_api_kinds": sorted(self.declared_api_kinds),
            "purposes": self.purposes,
            "entity_purposes": self.entity_purposes,
            "sdks_named": sorted(self.sdks_named),
            "third_parties": [self.quote(i) for i in self.third_party_sentences[:10]],
            "retention": [self.quote(i) for i in self.retention[:5]],
            "channels": {k: bool(v) for k, v in self.channels.items()},
            "channel_evidence": refs(self.channels),
            "response_days": self.response_days,
            "contacts": self.contacts,
            "bundled_consent": [self.quote(i) for i in self.bundled_consent[:5]],
            "unreasonable_conditions": self.unreasonable_conditions,
            "change_notice": [self.quote(i) for i in self.change_notice[:3]],
        }


def _find(sentence_low: str, words: list[str]) -> bool:
    return any(w.lower() in sentence_low for w in words)


@cache
def _sdk_aliases() -> list[tuple[str, str]]:
    """(alias, sdk id): each SDK's names in both languages and its short brand, longest first."""
    from piguard.apps.apk import sdk_catalogue

    out: set[tuple[str, str]] = set()
    for s in sdk_catalogue():
        for n in (s.name, s.name_zh):
            out.add((n.lower(), s.id))
            head = re.split(r"[（(/]", n)[0].strip()
            if len(head) >= 2:
                out.add((head.lower(), s.id))
        m = re.search(r"\(([^)]+)\)\s*$", s.vendor)
        if m and len(m.group(1)) >= 4:
            out.add((m.group(1).lower(), s.id))
    return sorted(out, key=lambda a: -len(a[0]))


def analyse(text: str, source: str = "<policy>", classifier: PolicyClassifier | None = None) -> PolicyFacts:
    """Policy facts from the policy's text; ``PolicyError`` for an empty policy."""
    sents = sentences(text)
    if not sents:
        raise PolicyError(f"{source}: empty policy (no sentences)")
    clf = classifier or load_default()
    labels = clf.predict(sents)
    t = terms()
    facts = PolicyFacts(source=source, sentences=sents, labels=labels, script=_script(text))
    counts: dict[str, int] = {}
    for ls in labels:
        for lab in ls:
            counts[lab] = counts.get(lab, 0) + 1
    facts.label_counts = counts
    purposes_seen: dict[str, None] = {}
    aliases = _sdk_aliases()
    for i, s in enumerate(sents):
        low = s.lower()
        negated = _find(low, t["negation"])
        ents = [e for e, words in t["entities"].items() if _find(low, words)]
        target = facts.denied_entities if negated else facts.declared_entities
        for e in ents:
            target.setdefault(e, []).append(i)
        for kind, words in t["api_kinds"].items():
            if _find(low, words):
                (facts.denied_api_kinds if negated else facts.declared_api_kinds).setdefault(kind, []).append(
                    i
                )
        if not negated:
            for g, words in t["permission_groups"].items():
                if _find(low, words):
                    facts.declared_groups.setdefault(g, []).append(i)
        # Purposes from the sentence's clauses, less those saying what refusing costs ("不影响您使用借款服务"
        # names a service, not the purpose of this collection).
        opt_words = t["optional_yes"] + t["optional_no"]
        clauses = " ".join(c for c in _CLAUSE.split(low) if not _find(c, opt_words))
        sent_purposes = [p for p, words in t["purposes"].items() if _find(clauses, words)]
        for p in sent_purposes:
            purposes_seen[p] = None
        if not negated:
            for e in ents:
                cur = facts.entity_purposes.setdefault(e, [])
                cur.extend(p for p in sent_purposes if p not in cur)
            if ents and _find(low, t["optional_yes"]):
                for e in ents:
                    facts.entity_optional[e] = True
            elif ents and _find(low, t["optional_no"]):
                for e in ents:
                    facts.entity_optional.setdefault(e, False)
        for alias, sid in aliases:
            if alias in low:
                facts.sdks_named.setdefault(sid, []).append(i)
        lab = labels[i]
        if "sharing" in lab or "第三方" in s or "third part" in low:
            facts.third_party_sentences.append(i)
        if "retention" in lab or any(w in s for w in ("保存期限", "存储期限", "保留期限", "保存期")):
            facts.retention.append(i)
        for ch, words in t["channels"].items():
            about_rights = "edit_control" in lab or "contact" in lab or "个人信息" in s or "您的信息" in s
            if _find(low, words) and (about_rights or ch in ("complaint", "cancellation")):
                facts.channels.setdefault(ch, []).append(i)
        if _find(low, t["bundled_consent"]):
            facts.bundled_consent.append(i)
        if ("注销" in s or "删除" in s) and _find(low, t["unreasonable_conditions"]):
            found = [w for w in t["unreasonable_conditions"] if w in s]
            facts.unreasonable_conditions.append({"conditions": found, "sentence": facts.quote(i)})
        if (
            ("policy_change" in lab or "变更" in s or "更新" in s)
            and "政策" in s
            and _find(low, t["change_notice"])
        ):
            facts.change_notice.append(i)
        if _find(low, t["response_words"]):
            for m in _DAYS.finditer(s):
                n = _zh_int(m.group(1))
                unit = m.group(2)
                working = "工作日" in unit
                if n <= 0:
                    continue
                facts.response_days.append({
                    "days": n, "unit": "working days" if working else "calendar days",
                    "working_days": float(n) if working else round(n * 5 / 7, 1), "sentence": facts.quote(i),
                })  # fmt: skip
        for m in _EMAIL.finditer(s):
            facts.contacts.append({"kind": "email", "masked": _mask(m.group(0))})
        for m in _PHONE.finditer(s):
            if "contact" in lab or _find(low, ("联系", "电话", "客服", "热线", "投诉")):
                facts.contacts.append({"kind": "phone", "masked": _mask(m.group(0))})
    facts.purposes = list(purposes_seen)
    seen: set[tuple[str, str]] = set()
    facts.contacts = [
        c for c in facts.contacts if (k := (c["kind"], c["masked"])) not in seen and not seen.add(k)
    ]
    return facts


def _mask(value: str) -> str:
    from piguard.detect.masking import mask_value

    if "@" in value:
        return mask_value("EMAIL_ADDRESS", value)
    return mask_value("PHONE_NUMBER", value)
