"""Postal addresses in Chinese and English text.

Chinese: an address is a run of administrative and street units (…省 …市 …区/县 …镇/乡 …村 …路/街/巷 …)
optionally closed by a house part (12号, 3栋, 2单元, 501室, G座). A run counts when it starts at a known place
(the province/prefecture/county gazetteer that python-stdnum ships as ``cn/loc.dat``, GB/T 2260
division names) or right after an address cue (地址, 住址, 住在 ...), or when it has at least two units and a
house part.

English: a house number, one to four capitalised words and a USPS street suffix (Street, Ave, Bridge ...),
optionally an apartment/suite, a city, and a state with a ZIP code.

Data: ``data/address.yaml`` (unit suffixes, cues), ``data/address_en_street_suffixes.txt``,
``data/address_en_states.txt``; the gazetteer is read from python-stdnum once, on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from piguard.detect._fastre import cjk_spans, finditer_spans, has_capitalised
from piguard.detect._lazy import load_yaml
from piguard.detect.structured import RawHit

_CJK = "\u4e00-\u9fff\u3400-\u4dbf"


@dataclass(frozen=True)
class _Data:
    places: frozenset[str]
    place_lengths: tuple[int, ...]
    rx_zh: re.Pattern[str]
    rx_unit: re.Pattern[str]
    rx_cue: re.Pattern[str]
    rx_cue_before: re.Pattern[str]
    en_pattern: str  # Rust regex syntax (run through polars only)
    # Whether every English address holds [A-Z][a-z] or "FPO" (each street suffix is capitalised, so is
    # "Box"; a ship's FPO line may be all capitals): a text with neither (a log) skips the pattern's pass.
    en_needs_capitalised: bool


def _lines(name: str) -> list[str]:
    text = resources.files("piguard.detect").joinpath("data", name).read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "特别行政区", "省", "市")
_COUNTY_SUFFIXES = ("自治县", "自治州", "自治旗", "新区", "地区", "市", "区", "县", "旗", "盟")


@cache
def gazetteer() -> frozenset[str]:
    """Province, prefecture and county names (full and without their suffix, when two characters or more)."""
    from stdnum import numdb

    names: set[str] = {"台湾省", "台湾", "香港", "澳门", "香港特别行政区", "澳门特别行政区"}
    for _, _, _, pprops, counties in numdb.get("cn/loc").prefixes:
        prov = pprops.get("province", "")
        if prov:
            names.add(prov)
            for suf in _PROVINCE_SUFFIXES:
                if prov.endswith(suf) and len(prov) - len(suf) >= 2:
                    names.add(prov[: -len(suf)])
                    break
        for _, _, _, cprops, _ in counties:
            county = cprops.get("county", "")
            if not county or county in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
                continue
            names.add(county)
            for suf in _COUNTY_SUFFIXES:
                if county.endswith(suf) and len(county) - len(suf) >= 2:
                    names.add(county[: -len(suf)])
                    break
    return frozenset(names)


@cache
def _data() -> _Data:
    src = resources.files("piguard.detect").joinpath("data", "address.yaml")
    raw = load_yaml(src.read_text("utf-8"))
    units = "|".join(re.escape(u) for u in sorted(raw["unit_suffixes"], key=len, reverse=True))
    house = "|".join(re.escape(u) for u in sorted(raw["house_suffixes"], key=len, reverse=True))
    unit = rf"[{_CJK}]{{1,8}}?(?:{units})"
    number = r"(?:[0-9０-９]+(?:[\-－之][0-9０-９]+)?|[A-Za-z]{1,2}[0-9]*|[一二三四五六七八九十]{1,3})"
    # A street word may stand alone right before the number (…北镇路X座, …东街12号).
    house_part = rf"(?:路|街|大街|道|巷|弄|里)?{number}(?:{house})"
    rx_zh = re.compile(rf"(?:{unit})+(?:{house_part})*|(?:{unit})*(?:{house_part})+")
    cues = raw["cues_zh"]
    rx_cue = re.compile("|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True)))
    rx_cue_before = re.compile(
        rf"(?:{'|'.join(re.escape(c) for c in sorted(cues, key=len, reverse=True))})[:：\s]*$"
        rf"|(?i:address|addr|ship to|deliver to|located at|lives at|live at|resides at)[:：\s]*$"
    )
    suffixes = _lines("address_en_street_suffixes.txt")
    states = _lines("address_en_states.txt")
    sfx = "|".join(re.escape(s) for s in sorted(set(suffixes), key=len, reverse=True))
    st = "|".join(states)
    cap = r"[A-Z][A-Za-z'\-]+"
    # ASCII classes only (spaces, not any Unicode space): Rust's DFA then stays small and fast.
    sp = r"[ \t]+"
    en_pattern = (
        rf"[0-9]{{1,6}}[A-Za-z]?{sp}(?:(?:[NSEW]|North|South|East|West)\.?{sp})?(?:{cap}{sp}){{0,3}}"
        rf"(?:{sfx})(?:\.|(?-u:\b))"
        rf"(?:,?{sp}(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|#|Room|Fl\.?|Floor)[ \t]*[A-Za-z0-9\-]+)?"
        rf"(?:,[ \t]*(?:{cap}{sp}){{0,2}}{cap}(?:,[ \t]*(?:{st}){sp}[0-9]{{5}}(?:-[0-9]{{4}})?)?)?"
        # US military and diplomatic mail (USPS Publication 28, section 237): PSC/Unit/CMR … APO/FPO/DPO.
        rf"|(?:PSC|Unit|CMR){sp}[0-9]{{3,5}},?{sp}Box{sp}[0-9]{{3,5}},{sp}[ADF]PO{sp}A[AEP]{sp}[0-9]{{5}}"
        rf"|(?:USNS|USNV|USS|USCGC){sp}{cap},{sp}FPO{sp}A[AEP]{sp}[0-9]{{5}}"
    )
    places = gazetteer()
    return _Data(
        places=places,
        place_lengths=tuple(sorted({len(p) for p in places}, reverse=True)),
        rx_zh=rx_zh,
        rx_unit=re.compile(unit),
        rx_cue=rx_cue,
        rx_cue_before=rx_cue_before,
        en_pattern=en_pattern,
        en_needs_capitalised=all(re.match("[A-Z][a-z]", x) for x in suffixes),
    )


def _is_cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf"


@cache
def _place_lengths_by_initial(places: frozenset[str]) -> dict[str, tuple[int, ...]]:
    """For each first character of a gazetteer name, the lengths of the names it starts (most characters
    start none, so most positions cost one dict lookup)."""
    out: dict[str, set[int]] = {}
    for p in places:
        out.setdefault(p[:1], set()).add(len(p))
    return {c: tuple(sorted(n, reverse=True)) for c, n in out.items()}


class AddressDetector:
    """ADDRESS in Chinese and English text, by gazetteer and address grammar."""

    name = "address"
    entities = ("ADDRESS",)

    def find(self, text: str) -> list[RawHit]:
        d = _data()
        hits: list[RawHit] = []
        for s, e in cjk_spans(text, d.rx_zh.pattern):
            hit = self._zh_hit(d, text, s, e)
            if hit is not None:
                hits.append(hit)
        if re.search(r"[0-9]", text) and (
            not d.en_needs_capitalised or has_capitalised(text) or "FPO" in text
        ):
            for s, e in finditer_spans(text, d.en_pattern):
                if s > 0 and (text[s - 1].isalnum() or text[s - 1] in "#_"):
                    continue
                value = text[s:e]
                # A street alone ('2 Way') is weak; a city, a ZIP code or a cue ('ship to') makes an address.
                conf = 0.8 if re.search(r"\d{5}(?:-\d{4})?$", value) or "," in value else 0.45
                if d.rx_cue_before.search(text[max(0, s - 20) : s]):
                    conf = min(1.0, conf + 0.1)
                hits.append(RawHit("ADDRESS", s, e, conf, self.name))
        return hits

    def _zh_hit(self, d: _Data, text: str, s: int, e: int) -> RawHit | None:
        units = d.rx_unit.findall(text, s, e)
        first_unit_end = s + len(units[0]) if units else s
        has_house = (bool(units) and sum(len(u) for u in units) < e - s) or not units
        # Where does the address really start? At a known place inside the first unit, else after a cue.
        start = -1
        places, by_initial = d.places, _place_lengths_by_initial(d.places)
        for p in range(s, max(first_unit_end - 1, s + 1)):
            lengths = by_initial.get(text[p])
            if lengths and any(text[p : p + n] in places for n in lengths if p + n <= e):
                start = p
                break
        cue_before = bool(d.rx_cue_before.search(text[max(0, s - 12) : s]))
        cue_inside = None
        for cm in d.rx_cue.finditer(text, s, first_unit_end):
            cue_inside = cm
        if cue_inside is not None and (start < 0 or start < cue_inside.end()):
            start = cue_inside.end()
            cue_before = True
        boundary = s == 0 or not _is_cjk(text[s - 1])
        if start < 0:
            if cue_before or (boundary and len(units) >= 2 and has_house):
                start = s
            elif len(units) >= 2 and has_house:
                return RawHit("ADDRESS", s, e, 0.45, self.name)
            else:
                return None
        if e - start < 4:
            return None
        n_units = len(d.rx_unit.findall(text, start, e))
        if n_units + has_house < 2 and not cue_before:
            return None
        conf = 0.85 if (n_units >= 2 or has_house) else 0.6
        if cue_before:
            conf = min(1.0, conf + 0.1)
        return RawHit("ADDRESS", start, e, conf, self.name)
