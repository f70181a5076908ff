"""Labelled text: the examples a name/address model is adapted on and scored against.

Four layouts are read (the ones Chinese NER data comes in). Three are JSON, one example per line:

* piguard's own: ``{"text": ..., "spans": [{"start": 0, "end": 3, "entity": "PERSON"}]}`` (end exclusive);
* CLUENER's: ``{"text": ..., "label": {"name": {"叶老桂": [[9, 11]]}}}`` (end *inclusive*);
* entity lists (CCF BDCI and many others): ``{"text": ..., "entities": [{"label": ..., "start", "end"}]}``
  (end exclusive).

The fourth is the token-per-line column layout of MSRA, People's Daily, Weibo NER and CoNLL: a token and its
tag on each line (other columns between them are ignored), a blank line between sentences, tags in BIO, BIOES,
BMES or BILOU (``B-PER``, ``I-PER``, ``M-PER``, ``E-PER``, ``S-PER``, ``O``). Tokens are joined as they are:
Chinese corpora give one character per line. A file is read as columns when its first line is not JSON
but a token and a tag.

Labels are mapped to piguard entity ids where one fits (``name`` -> PERSON, ``address`` -> ADDRESS, see
``LABEL_MAP``); any other label is kept as given. A model learns every label it is shown (telling a club
from a person helps it), but only piguard entity ids are ever reported.

A bad line (not JSON, no text, a span outside the text) is reported with its file and line number and
skipped, as is a column sentence with a bad line in it; the rest of the file is still read.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

LABEL_MAP = {
    "name": "PERSON",
    "person": "PERSON",
    "per": "PERSON",
    "nr": "PERSON",
    "address": "ADDRESS",
    "addr": "ADDRESS",
    "mobile": "PHONE_NUMBER",
    "phone": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS",
}


@dataclass(frozen=True)
class LabelledText:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # start, end (exclusive), label


@dataclass
class ReadReport:
    """What was read from labelled files, and the lines that were skipped (``path:line: why``)."""

    examples: list[LabelledText] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class LabelledDataError(ValueError):
    """A labelled file that cannot be used at all (missing, unreadable, no example in it)."""


def map_label(label: str) -> str:
    return LABEL_MAP.get(label.strip().lower(), label.strip())


def parse_example(obj: object) -> LabelledText:
    """One example from any of the three layouts; ValueError says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        raise ValueError("no 'text' string")
    spans: list[tuple[int, int, str]] = []
    if "spans" in obj or "entities" in obj:
        key = "spans" if "spans" in obj else "entities"
        items = obj[key]
        if not isinstance(items, list):
            raise ValueError(f"'{key}' is not a list")
        for it in items:
            if not isinstance(it, dict):
                raise ValueError(f"an item of '{key}' is not an object")
            label = it.get("entity", it.get("label"))
            spans.append((_int(it.get("start")), _int(it.get("end")), _label(label)))
    elif "label" in obj:
        labels = obj["label"]
        if not isinstance(labels, dict):
            raise ValueError("'label' is not an object")
        for label, surfaces in labels.items():
            if not isinstance(surfaces, dict):
                raise ValueError(f"label {label!r} does not map surfaces to spans")
            for positions in surfaces.values():
                for pos in positions:
                    if not isinstance(pos, list) or len(pos) != 2:
                        raise ValueError(f"label {label!r}: a span is not [start, end]")
                    spans.append(
                        (_int(pos[0]), _int(pos[1]) + 1, _label(label))
                    )  # CLUENER ends are inclusive
    for s, e, _ in spans:
        if not 0 <= s < e <= len(text):
            raise ValueError(f"span [{s}, {e}) is outside the text ({len(text)} characters)")
    return LabelledText(text, tuple(sorted(set(spans))))


def _int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"span offset {v!r} is not an integer")
    return v


def _label(v: object) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"label {v!r} is not a non-empty string")
    return map_label(v)


def iter_file(path: str | Path, report: ReadReport) -> Iterator[LabelledText]:
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8-sig", errors="strict")
    except OSError as exc:
        raise LabelledDataError(f"{p}: cannot open: {exc.strerror or exc}") from None
    with fh:
        seen = [0]  # the number of the line last read, for the encoding error

        def numbered() -> Iterator[tuple[int, str]]:
            for seen[0], line in enumerate(fh, 1):
                yield seen[0], line

        try:
            lines = numbered()
            first = next((nl for nl in lines if nl[1].strip()), None)  # skips leading blank lines
            if first is None:
                return
            rest = itertools.chain([first], lines)
            if _is_column_line(first[1]):
                yield from _column_examples(rest, p, report)
            else:
                yield from _json_examples(rest, p, report)
        except UnicodeDecodeError:
            raise LabelledDataError(f"{p}: line {seen[0] + 1} is not UTF-8") from None


def _json_examples(lines: Iterable[tuple[int, str]], p: Path, report: ReadReport) -> Iterator[LabelledText]:
    for n, line in lines:
        if not line.strip():
            continue
        try:
            yield parse_example(json.loads(line))
        except json.JSONDecodeError as exc:
            report.problems.append(f"{p}:{n}: not JSON ({exc.msg})")
        except ValueError as exc:
            report.problems.append(f"{p}:{n}: {exc}")


_TAG = re.compile(r"O|[BIMESLU]-\S+")


def _is_column_line(line: str) -> bool:
    fields = line.split()
    return len(fields) >= 2 and not line.lstrip().startswith("{") and bool(_TAG.fullmatch(fields[-1]))


def _column_examples(lines: Iterable[tuple[int, str]], p: Path, report: ReadReport) -> Iterator[LabelledText]:
    tokens: list[str] = []
    tags: list[str] = []
    problem = ""
    for n, line in itertools.chain(lines, [(0, "")]):
        fields = line.split()
        if fields and fields[0] == "-DOCSTART-":  # CoNLL's document marker, not a sentence
            continue
        if fields:
            if problem:
                continue
            if len(fields) < 2:
                problem = f"{p}:{n}: a token without a tag"
            elif not _TAG.fullmatch(fields[-1]):
                # the value is not echoed: in a malformed line the last column may be text, not a tag
                problem = f"{p}:{n}: the last column is not a tag (O, or B-/I-/M-/E-/S-/L-/U- and a label)"
            else:
                tokens.append(fields[0])
                tags.append(fields[-1])
            continue
        if problem:
            report.problems.append(problem + " (sentence skipped)")
        elif tokens:
            yield LabelledText("".join(tokens), _spans_from_tags(tokens, tags))
        tokens, tags, problem = [], [], ""


def _spans_from_tags(tokens: list[str], tags: list[str]) -> tuple[tuple[int, int, str], ...]:
    """Spans from a tag sequence in any of BIO, BIOES, BMES and BILOU.

    Decoded leniently, as conlleval does: an inside tag (I-, M-, E-, L-) that does not continue a span of
    its label begins one. Written here rather than taken from seqeval, which needs scikit-learn for this.
    """
    spans: list[tuple[int, int, str]] = []
    open_label, start, end, offset = "", 0, 0, 0
    for token, tag in zip(tokens, tags, strict=True):
        token_start, offset = offset, offset + len(token)
        prefix, label = tag[0], tag[2:]
        if tag == "O" or prefix in "BSU" or label != open_label:
            if open_label:
                spans.append((start, end, map_label(open_label)))
            open_label, start = ("", 0) if tag == "O" else (label, token_start)
        end = offset
        if open_label and prefix in "ESLU":
            spans.append((start, end, map_label(open_label)))
            open_label = ""
    if open_label:
        spans.append((start, end, map_label(open_label)))
    return tuple(sorted(set(spans)))


def read_labelled(paths: list[str | Path] | tuple[str | Path, ...]) -> ReadReport:
    """Every example in ``paths``; skipped lines are listed in ``problems``. Raises LabelledDataError
    when a file cannot be read or nothing usable was found."""
    report = ReadReport()
    for p in paths:
        report.examples.extend(iter_file(p, report))
    if not report.examples:
        where = ", ".join(str(p) for p in paths) or "(no file)"
        raise LabelledDataError(f"{where}: no usable labelled example")
    return report
