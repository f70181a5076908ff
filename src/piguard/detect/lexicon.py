"""Word-lexicon features for adapted taggers: which dictionary words each character begins, continues or ends.

A character model such as LAC reads one character at a time; whether ``阿森纳`` is a word, and a place, a
club or a person's name, it must infer from context alone. Chinese NER gains from telling it (Lattice LSTM,
SoftLexicon): for each character, flags for each word class of the dictionary words that cover it, by the
character's role in the word (begin, middle, end). The dictionary is jieba's (``jieba/dict.txt``, MIT, about
350,000 words with part-of-speech tags, shipped inside the package: nothing is downloaded), read directly
rather than through jieba's segmenter, since every covering word counts, not one segmentation.

The tags are grouped into a few classes (``CLASSES``); a word of any other tag counts as ``WORD``. jieba's
person-name tags are noisy (idioms tagged ``nr``), so the flags are features a model learns to weigh, never
decisions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import metadata, util
from pathlib import Path

import numpy as np

# jieba part-of-speech tags (ICTCLAS set) grouped into the classes a tagger sees; any other tag is WORD.
CLASSES: dict[str, tuple[str, ...]] = {
    "PER": ("nr", "nrt", "nrfg"),  # person names, transliterated names
    "LOC": ("ns",),  # place names
    "ORG": ("nt",),  # organisations
    "NZ": ("nz",),  # other proper nouns
    "WORD": (),
}
ROLES = ("B", "M", "E")  # a character begins, is inside, or ends a word of two or more characters
MAX_WORD = 8  # longer dictionary entries are idioms and phrases; they add cost and nothing for names
WIDTH = len(CLASSES) * len(ROLES)


class LexiconUnavailable(RuntimeError):
    """jieba (whose dictionary the features come from) is not installed."""


@dataclass(frozen=True)
class Lexicon:
    words: dict[str, int]  # word -> bit set of its classes' indices
    prefixes: frozenset[str]  # every proper prefix of a word, so a lookup stops where no word can continue
    sha256: str
    version: str | None

    def features(self, text: str) -> np.ndarray:
        """(len(text), WIDTH) float32 flags: column ``class * 3 + role``."""
        out = np.zeros((len(text), WIDTH), dtype=np.float32)
        n = len(text)
        for i in range(n):
            for j in range(i + 2, min(n, i + MAX_WORD) + 1):
                piece = text[i:j]
                bits = self.words.get(piece)
                if bits:
                    for k in range(len(CLASSES)):
                        if bits >> k & 1:
                            out[i, 3 * k] = 1.0
                            out[i + 1 : j - 1, 3 * k + 1] = 1.0
                            out[j - 1, 3 * k + 2] = 1.0
                if piece not in self.prefixes:
                    break
        return out

    def batch(self, texts: list[str], width: int) -> np.ndarray:
        """(len(texts), width, WIDTH) flags of a padded batch (padding all zero)."""
        out = np.zeros((len(texts), width, WIDTH), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, : len(t)] = self.features(t)
        return out

    def describe(self) -> dict[str, object]:
        """What a model trained with these features records, to refuse a different dictionary later."""
        return {"package": "jieba", "version": self.version, "dict_sha256": self.sha256, "classes": CLASSES}


def dictionary_path() -> Path:
    spec = util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        raise LexiconUnavailable("lexicon features need jieba's dictionary: pip install jieba")
    return Path(next(iter(spec.submodule_search_locations))) / "dict.txt"


@cache
def load() -> Lexicon:
    path = dictionary_path()
    raw = path.read_bytes()
    index = {tag: k for k, tags in enumerate(CLASSES.values()) for tag in tags}
    other = list(CLASSES).index("WORD")
    words: dict[str, int] = {}
    prefixes: set[str] = set()
    for line in raw.decode("utf-8").splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or not 2 <= len(parts[0]) <= MAX_WORD:
            continue
        word, tag = parts[0], parts[2]
        words[word] = words.get(word, 0) | 1 << index.get(tag, other)
        prefixes.update(word[:k] for k in range(2, len(word)))
    try:
        version: str | None = metadata.version("jieba")
    except metadata.PackageNotFoundError:
        version = None
    return Lexicon(words, frozenset(prefixes), hashlib.sha256(raw).hexdigest(), version)
