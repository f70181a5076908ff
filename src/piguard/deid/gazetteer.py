"""China's administrative divisions for generalization: county/district -> prefecture (city) -> province.

The data is the GB/T 2260 division code list that python-stdnum ships as ``stdnum/cn/loc.dat`` (compiled
from the Wikipedia tables of the Ministry of Civil Affairs' codes, with each name's years of validity) and
that piguard's address detector already reads. It is a maintained package's data, so nothing is copied into
piguard: the tree is built from it on first use.

A code ``PPCCDD`` names a province ``PP``, a prefecture ``PPCC00`` and a county-level unit ``PPCCDD``. The
four municipalities (北京, 天津, 上海, 重庆) are their own prefecture. Names that were valid in some years
only (``[1983-1989]南头区办事处,[1990-]南山区``) are all kept, because resident ID numbers keep the code
they were issued under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
# Placeholder rows of the code list that are not places.
_NOT_PLACES = frozenset(
    {
        "市辖区",
        "县",
        "郊区",
        "矿区",
        "省直辖县级行政区划",
        "省直辖县级行政单位",
        "自治区直辖县级行政区划",
        "自治区直辖县级行政单位",
        "省直辖行政单位",
    }
)
_YEARS = re.compile(r"^\[(\d{4})?-(\d{4})?\]")
_PROVINCE_SUFFIXES = ("壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省", "市")
_PREFECTURE_SUFFIXES = ("自治州", "地区", "盟", "市")
_COUNTY_SUFFIXES = ("自治县", "自治旗", "新区", "林区", "特区", "市", "区", "县", "旗")
# Hong Kong, Macao and Taiwan have no county rows in the code list (resident permits use 81/82/83).
_EXTRA_PROVINCES = {"71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区", "83": "台湾省"}


@dataclass(frozen=True)
class Place:
    """One resolved place: province name, prefecture name (the province for municipalities) and, for a
    county-level unit, its name."""

    province: str
    prefecture: str | None = None
    county: str | None = None


def _names(raw: str) -> tuple[str | None, list[str]]:
    """(current name or None for an abolished code, all names) from a code list entry such as
    ``[1983-1989]南头区办事处,[1990-]南山区``."""
    names: list[str] = []
    current: str | None = None
    for part in raw.split(","):
        m = _YEARS.match(part)
        name = part[m.end() :] if m else part
        if not name:
            continue
        names.append(name)
        if m is None or m.group(2) is None:
            current = name
    return current, names


@dataclass(frozen=True)
class Gazetteer:
    province_of_code: dict[str, str]  # "33" -> 浙江省
    place_of_code: dict[str, Place]  # "330106" -> Place(浙江省, 杭州市, 西湖区); "3301" -> prefecture
    by_name: dict[str, frozenset[Place]]  # any name or short name -> the places it can mean

    def resolve(self, text: str) -> frozenset[Place]:
        """Places a bare name can mean (``杭州``, ``杭州市``, ``西湖区``, ``浙江``); empty when unknown."""
        return self.by_name.get(text.strip(), frozenset())

    def resolve_prefix(self, text: str) -> Place | None:
        """The most specific place an address starts with (``浙江省杭州市西湖区文三路`` -> 西湖区 of 杭州市),
        reading province, prefecture and county names in turn; None when it starts with no known place."""
        s = text.strip()
        found: Place | None = None
        pos = 0
        for _ in range(3):
            best: tuple[int, frozenset[Place]] | None = None
            for length in range(min(12, len(s) - pos), 1, -1):
                cands = self.by_name.get(s[pos : pos + length])
                if cands:
                    if found is not None:
                        cands = frozenset(c for c in cands if _within(c, found))
                    if cands:
                        best = (length, cands)
                        break
            if best is None:
                break
            length, cands = best
            pick = _most_specific(cands)
            if pick is None:
                break
            found, pos = pick, pos + length
        return found


def _within(place: Place, outer: Place) -> bool:
    """``place`` lies inside ``outer`` and is more specific than it."""
    if place.province != outer.province:
        return False
    if outer.prefecture is None:
        return place.prefecture is not None
    if place.prefecture != outer.prefecture:
        return False
    return outer.county is None and place.county is not None


def _most_specific(cands: frozenset[Place]) -> Place | None:
    """One place when the candidates agree up to the most specific level they share, else None."""
    if len(cands) == 1:
        return next(iter(cands))
    return None


def _short(name: str, suffixes: tuple[str, ...]) -> str | None:
    for suf in suffixes:
        if name.endswith(suf) and len(name) - len(suf) >= 2:
            return name[: -len(suf)]
    return None


@cache
def gazetteer() -> Gazetteer:
    from stdnum import numdb

    province_of_code: dict[str, str] = dict(_EXTRA_PROVINCES)
    place_of_code: dict[str, Place] = {}
    current: dict[str, set[Place]] = {}  # names in use today
    former: dict[str, set[Place]] = {}  # names of abolished or renamed units

    def add(names: list[str], now: str | None, place: Place, suffixes: tuple[str, ...]) -> None:
        for name in names:
            if not name or name in _NOT_PLACES:
                continue
            index = current if name == now else former
            index.setdefault(name, set()).add(place)
            short = _short(name, suffixes)
            if short:
                index.setdefault(short, set()).add(place)

    for code, name in _EXTRA_PROVINCES.items():
        if code != "83":
            add([name], name, Place(name), _PROVINCE_SUFFIXES)
    for _, pcode, _, pprops, rows in numdb.get("cn/loc").prefixes:
        now, names = _names(pprops.get("province", ""))
        province = now or (names[-1] if names else "")
        if not province:
            continue
        province_of_code[pcode] = province
        add(names, now, Place(province), _PROVINCE_SUFFIXES)
        prefectures: dict[str, str] = {}
        for _, ccode, _, cprops, _ in rows:  # prefecture rows (CC00)
            if not ccode.endswith("00") or ccode == "0000":  # 0000 is the province itself
                continue
            now, names = _names(cprops.get("county", ""))
            name = now or (names[-1] if names else "")
            if pcode in MUNICIPALITIES or not name or name in _NOT_PLACES:
                continue
            prefectures[ccode[:2]] = name
            place = Place(province, name)
            place_of_code[pcode + ccode[:2]] = place
            add(names, now, place, _PREFECTURE_SUFFIXES)
        for _, ccode, _, cprops, _ in rows:
            if ccode.endswith("00"):
                continue
            now, names = _names(cprops.get("county", ""))
            name = now or (names[-1] if names else "")
            if not name or name in _NOT_PLACES:
                continue
            # Municipalities are their own prefecture; county-level cities directly under a province
            # (仙桃市) are their own too.
            prefecture = province if pcode in MUNICIPALITIES else prefectures.get(ccode[:2]) or name
            place = Place(province, prefecture, name)
            place_of_code[pcode + ccode] = place
            add(names, now, place, _COUNTY_SUFFIXES)
    by_name = {k: frozenset(v) for k, v in former.items()}
    by_name.update({k: frozenset(v) for k, v in current.items()})  # today's meaning wins
    return Gazetteer(province_of_code=province_of_code, place_of_code=place_of_code, by_name=by_name)


__all__ = ["Gazetteer", "Place", "gazetteer", "short_names"]


def short_names(name: str) -> set[str]:
    """A division name and its short form (浙江省 -> {浙江省, 浙江}), as cells may write either."""
    out = {name}
    short = _short(name, _PROVINCE_SUFFIXES + _PREFECTURE_SUFFIXES)
    if short:
        out.add(short)
    return out
