"""The policy-sentence classifier: TF-IDF over character n-grams and one linear scorer per CAPP-130 practice
label, run on numpy alone (no scikit-learn at run time).

The model file holds the vocabulary, the idf weights, the weight matrix (float16, base64) and one decision
threshold per label; ``piguard.apps.train`` builds it with scikit-learn. Its ``predict`` reproduces
scikit-learn's ``TfidfVectorizer(analyzer="char")`` exactly (whitespace runs collapsed, lower-cased, n-grams
of every length in the range, sublinear tf, l2 norm), which a test checks against scikit-learn itself.
"""

from __future__ import annotations

import base64
import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

# CAPP-130 topic labels, in the corpus's order (capp130_label_explanation.json ids 0-10).
LABELS = (
    "collection", "permission", "sharing", "usage", "retention", "security", "special_audiences",
    "edit_control", "contact", "policy_change", "cessation",
)  # fmt: skip
LABELS_ZH = (
    "数据收集", "权限获取", "共享、委托、转让、公开（披露）", "使用", "存储方式", "安全措施", "特殊人群",
    "数据、权限管理", "联系方式", "隐私政策的授权、修改与变更", "停止运营",
)  # fmt: skip
_WS = re.compile(r"\s\s+")
MODEL_FILE = "data/policy_model.json"


class ModelError(ValueError):
    """A model file that cannot be loaded."""


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _unb64(s: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=dtype).reshape(shape)


class PolicyClassifier:
    def __init__(
        self,
        vocab: list[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        thresholds: np.ndarray,
        ngram_range: tuple[int, int],
        sublinear_tf: bool,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.index = {g: i for i, g in enumerate(vocab)}
        self.vocab = vocab
        self.idf = idf.astype(np.float32)
        self.coef = coef.astype(np.float32)  # (labels, features)
        self.intercept = intercept.astype(np.float32)
        self.thresholds = thresholds.astype(np.float32)
        self.ngram_range = ngram_range
        self.sublinear_tf = sublinear_tf
        self.meta = meta or {}

    def _row(self, text: str) -> tuple[list[int], list[float]]:
        doc = _WS.sub(" ", text.lower())
        counts: dict[int, int] = {}
        lo, hi = self.ngram_range
        index = self.index
        for n in range(lo, hi + 1):
            for i in range(len(doc) - n + 1):
                j = index.get(doc[i : i + n])
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
        cols = list(counts)
        vals = [(1.0 + math.log(c)) if self.sublinear_tf else float(c) for c in counts.values()]
        return cols, vals

    def scores(self, texts: list[str]) -> np.ndarray:
        """Decision scores, one row per text and one column per label (threshold per label in the model)."""
        out = np.empty((len(texts), len(LABELS)), dtype=np.float32)
        for r, text in enumerate(texts):
            cols, vals = self._row(text)
            if not cols:
                out[r] = self.intercept
                continue
            c = np.asarray(cols)
            v = np.asarray(vals, dtype=np.float32) * self.idf[c]
            norm = float(np.sqrt((v * v).sum())) or 1.0
            out[r] = self.coef[:, c] @ (v / norm) + self.intercept
        return out

    def predict(self, texts: list[str]) -> list[list[str]]:
        s = self.scores(texts) >= self.thresholds
        return [[LABELS[j] for j in np.flatnonzero(row)] for row in s]

    def to_json(self) -> str:
        doc = {
            "format": "piguard-policy-classifier/1",
            "labels": list(LABELS),
            "ngram_range": list(self.ngram_range),
            "sublinear_tf": self.sublinear_tf,
            "vocab": self.vocab,
            "idf": _b64(self.idf.astype(np.float32)),
            "coef": _b64(self.coef.astype(np.float16)),
            "intercept": [round(float(x), 6) for x in self.intercept],
            "thresholds": [round(float(x), 6) for x in self.thresholds],
            "meta": self.meta,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, name: str = "<model>") -> PolicyClassifier:
        try:
            doc = json.loads(text)
            if doc.get("format") != "piguard-policy-classifier/1" or doc.get("labels") != list(LABELS):
                raise ModelError(f"{name}: not a piguard policy classifier (format or labels differ)")
            vocab = doc["vocab"]
            n = len(vocab)
            return cls(
                vocab=vocab,
                idf=_unb64(doc["idf"], "<f4", (n,)),
                coef=_unb64(doc["coef"], "<f2", (len(LABELS), n)),
                intercept=np.asarray(doc["intercept"], dtype=np.float32),
                thresholds=np.asarray(doc["thresholds"], dtype=np.float32),
                ngram_range=(int(doc["ngram_range"][0]), int(doc["ngram_range"][1])),
                sublinear_tf=bool(doc["sublinear_tf"]),
                meta=doc.get("meta") or {},
            )
        except ModelError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ModelError(f"{name}: malformed model file ({type(exc).__name__})") from None


def load(path: str | Path) -> PolicyClassifier:
    p = Path(path)
    try:
        return PolicyClassifier.from_json(p.read_text("utf-8"), str(p))
    except OSError as exc:
        raise ModelError(f"{p}: cannot read ({exc.strerror or type(exc).__name__})") from None


@cache
def load_default() -> PolicyClassifier:
    """The shipped model, trained on CAPP-130 (CC BY 4.0; see the model's ``meta.attribution``)."""
    text = resources.files("piguard.apps").joinpath(MODEL_FILE).read_text("utf-8")
    return PolicyClassifier.from_json(text, MODEL_FILE)
