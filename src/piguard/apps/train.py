"""Train and measure the policy-sentence classifier (needs scikit-learn, in the ``[apps]`` extra).

``python -m piguard.apps.train CAPP130_FILE --out model.json`` trains the shipped model;
``benchmarks/apps_bench.py`` measures it by 5-fold cross-validation beside a TF-IDF + logistic-regression
baseline. The corpus format is CAPP-130's topic-identification split: one sentence, a tab, and a JSON list
of 11 zeros and ones per line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from piguard.apps.classifier import LABELS, PolicyClassifier

ATTRIBUTION = (
    "Trained on CAPP-130 (Zhu et al., 'CAPP-130: A Corpus of Chinese Application Privacy Policy "
    "Summarization and Interpretation', NeurIPS 2023 Datasets and Benchmarks; "
    "github.com/EnlightenedAI/CAPP-130), topic-identification sentences, licensed CC BY 4.0. "
    "The model is a derived work under the same attribution."
)


@dataclass(frozen=True)
class Config:
    ngram_min: int = 1
    ngram_max: int = 4
    min_df: int = 2
    sublinear_tf: bool = True
    c: float = 10.0
    balanced: bool = True
    tune_thresholds: bool = True
    inner_folds: int = 3
    # Weight of a linear SVM blended into each label's scorer. Both are linear in the same features, so the
    # blend is one weight vector: no cost at run time.
    svm_weight: float = 0.0
    svm_c: float = 0.5


BASELINE = Config(ngram_min=1, ngram_max=2, min_df=1, sublinear_tf=False, c=1.0, balanced=False,
                  tune_thresholds=False)  # fmt: skip


def read_corpus(path: str | Path) -> tuple[list[str], np.ndarray]:
    texts: list[str] = []
    labels: list[list[int]] = []
    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            text, sep, lab = line.rpartition("\t")
            try:
                y = json.loads(lab) if sep else None
            except json.JSONDecodeError:
                y = None
            if not isinstance(y, list) or len(y) != len(LABELS):
                raise ValueError(f"{path}:{n}: expected 'sentence<TAB>[11 zeros and ones]'")
            texts.append(text)
            labels.append([int(v) for v in y])
    return texts, np.asarray(labels, dtype=np.int8)


def _vectorizer(cfg: Config):  # type: ignore[no-untyped-def]
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char", ngram_range=(cfg.ngram_min, cfg.ngram_max), min_df=cfg.min_df,
        sublinear_tf=cfg.sublinear_tf, dtype=np.float32,
    )  # fmt: skip


def _fit_scorers(x, y: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """One logistic regression per label: (coef [labels, features], intercept [labels])."""
    from sklearn.linear_model import LogisticRegression

    coef = np.zeros((y.shape[1], x.shape[1]), dtype=np.float32)
    intercept = np.zeros(y.shape[1], dtype=np.float32)
    for j in range(y.shape[1]):
        if y[:, j].min() == y[:, j].max():  # a label absent from this training split
            intercept[j] = 10.0 if y[0, j] else -10.0
            continue
        lr = LogisticRegression(
            C=cfg.c,
            solver="liblinear",
            class_weight="balanced" if cfg.balanced else None,
            max_iter=1000,
            random_state=0,  # liblinear shuffles: a fixed seed makes retraining reproducible
        )
        lr.fit(x, y[:, j])
        coef[j] = lr.coef_[0]
        intercept[j] = lr.intercept_[0]
        if cfg.svm_weight:
            from sklearn.svm import LinearSVC

            svm = LinearSVC(C=cfg.svm_c, class_weight="balanced" if cfg.balanced else None, random_state=0)
            svm.fit(x, y[:, j])
            # An SVM margin of 1 is about a logit of 4 here; scale so the two speak the same units.
            w = cfg.svm_weight
            coef[j] = (1 - w) * coef[j] + w * 4.0 * svm.coef_[0]
            intercept[j] = (1 - w) * intercept[j] + w * 4.0 * svm.intercept_[0]
    return coef, intercept


def _best_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The decision threshold that maximises F1 on out-of-fold scores (0 is logistic regression's own)."""
    best, best_f1 = 0.0, -1.0
    for t in np.linspace(-2.0, 3.0, 51):
        pred = scores >= t
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    return best


def _scores(x, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(x @ coef.T) + intercept


def fit(texts: list[str], y: np.ndarray, cfg: Config = Config(), seed: int = 0) -> PolicyClassifier:
    from sklearn.model_selection import KFold

    vec = _vectorizer(cfg)
    x = vec.fit_transform(texts)
    coef, intercept = _fit_scorers(x, y, cfg)
    thresholds = np.zeros(y.shape[1], dtype=np.float32)
    if cfg.tune_thresholds:
        oof = np.zeros(y.shape, dtype=np.float32)
        for tr, te in KFold(cfg.inner_folds, shuffle=True, random_state=seed).split(texts):
            v = _vectorizer(cfg)
            xtr = v.fit_transform([texts[i] for i in tr])
            c, b = _fit_scorers(xtr, y[tr], cfg)
            oof[te] = _scores(v.transform([texts[i] for i in te]), c, b)
        thresholds = np.asarray([_best_threshold(oof[:, j], y[:, j]) for j in range(y.shape[1])], np.float32)
    vocab = [""] * len(vec.vocabulary_)
    for g, i in vec.vocabulary_.items():
        vocab[i] = g
    return PolicyClassifier(
        vocab=vocab, idf=vec.idf_, coef=coef, intercept=intercept, thresholds=thresholds,
        ngram_range=(cfg.ngram_min, cfg.ngram_max), sublinear_tf=cfg.sublinear_tf,
        meta={"config": asdict(cfg), "sentences": len(texts), "attribution": ATTRIBUTION},
    )  # fmt: skip


def f1_report(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    per = {}
    tps = fps = fns = 0
    for j, lab in enumerate(LABELS):
        tp = int(((pred[:, j] == 1) & (y[:, j] == 1)).sum())
        fp = int(((pred[:, j] == 1) & (y[:, j] == 0)).sum())
        fn = int(((pred[:, j] == 0) & (y[:, j] == 1)).sum())
        tps, fps, fns = tps + tp, fps + fp, fns + fn
        per[lab] = {"f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4), "support": int(y[:, j].sum())}
    macro = float(np.mean([v["f1"] for v in per.values()]))
    return {
        "micro_f1": round(2 * tps / max(2 * tps + fps + fns, 1), 4),
        "macro_f1": round(macro, 4),
        "per_label": per,
    }


def cross_validate(
    texts: list[str], y: np.ndarray, cfg: Config, folds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """F1 per label, micro and macro, of out-of-fold predictions (each fold scored by ``fit`` on the rest)."""
    from sklearn.model_selection import KFold

    pred = np.zeros(y.shape, dtype=np.int8)
    for tr, te in KFold(folds, shuffle=True, random_state=seed).split(texts):
        model = fit([texts[i] for i in tr], y[tr], cfg, seed=seed)
        s = model.scores([texts[i] for i in te])
        pred[te] = (s >= model.thresholds).astype(np.int8)
    return f1_report(y, pred)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m piguard.apps.train", description=__doc__.splitlines()[0])
    ap.add_argument("corpus", help="CAPP-130 topic-identification file (sentence<TAB>[labels])")
    ap.add_argument("--out", required=True, help="model file to write (JSON)")
    args = ap.parse_args(argv)
    from piguard._fs import atomic_write_text

    try:
        texts, y = read_corpus(args.corpus)
    except (OSError, ValueError) as exc:
        print(f"piguard.apps.train: {exc}", file=sys.stderr)
        return 2
    model = fit(texts, y)
    atomic_write_text(args.out, model.to_json())
    print(f"wrote {args.out}: {len(model.vocab)} features, {len(texts)} sentences")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
