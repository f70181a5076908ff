"""PERSON and ADDRESS (plus PHONE_NUMBER and EMAIL_ADDRESS) on labelled text, side by side with peers.

Sets (read from ../shared, never shipped):
  generated  benchmarks/data/detect_corpus.txt + .labels.jsonl (Faker zh_CN/en_US, labelled by construction)
  cluener    ../shared/data/pii-eval/cluener/{train,dev}.json (name/address -> PERSON/ADDRESS; ends inclusive)
  ccf2020    ../shared/data/pii-eval/ccf2020-privacy/ccf2020_privacy_train.jsonl (ends exclusive)
  presidio   ../shared/data/pii-eval/presidio-synth/synth_dataset_v2.json (English; STREET_ADDRESS -> ADDRESS)

Scoring is strict: a prediction counts only when entity, start and end all equal a gold span. Throughput is
the UTF-8 size of the set over the wall time of the detection calls (one process, one core for the model).

    .venv/bin/python benchmarks/eval_person_address.py            # all sets, piguard + peers
    .venv/bin/python benchmarks/eval_person_address.py --sets cluener-dev --no-peers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "pii-eval"
ENTITIES = ("PERSON", "ADDRESS", "PHONE_NUMBER", "EMAIL_ADDRESS")

Span = tuple[int, str, int, int]  # doc index, entity, start, end
Doc = str


def load_generated() -> tuple[list[Doc], set[Span]]:
    text = (ROOT / "benchmarks/data/detect_corpus.txt").read_text("utf-8")
    gold: set[Span] = set()
    for line in (ROOT / "benchmarks/data/detect_corpus.labels.jsonl").read_text("utf-8").splitlines():
        d = json.loads(line)
        if d["entity"] in ENTITIES:
            gold.add((0, d["entity"], d["start"], d["end"]))
    # Cut into ~64 KB blocks of whole lines (as the file scanner reads), shifting the offsets.
    docs: list[Doc] = []
    starts: list[int] = []
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos + 65536)
        end = len(text) if end < 0 else end + 1
        docs.append(text[pos:end])
        starts.append(pos)
        pos = end
    import bisect

    shifted: set[Span] = set()
    for _, ent, s, e in gold:
        i = bisect.bisect_right(starts, s) - 1
        shifted.add((i, ent, s - starts[i], e - starts[i]))
    return docs, shifted


def load_cluener(split: str) -> tuple[list[Doc], set[Span]]:
    docs: list[Doc] = []
    gold: set[Span] = set()
    mapping = {"name": "PERSON", "address": "ADDRESS"}
    for i, line in enumerate((SHARED / "cluener" / f"{split}.json").read_text("utf-8").splitlines()):
        d = json.loads(line)
        docs.append(d["text"])
        for label, ent in mapping.items():
            for spans in d.get("label", {}).get(label, {}).values():
                for s, e in spans:
                    gold.add((i, ent, s, e + 1))
    return docs, gold


def load_ccf() -> tuple[list[Doc], set[Span]]:
    docs: list[Doc] = []
    gold: set[Span] = set()
    mapping = {"name": "PERSON", "address": "ADDRESS", "mobile": "PHONE_NUMBER", "email": "EMAIL_ADDRESS"}
    path = SHARED / "ccf2020-privacy" / "ccf2020_privacy_train.jsonl"
    for i, line in enumerate(x for x in path.read_text("utf-8").split("\n") if x.strip()):
        d = json.loads(line)
        docs.append(d["text"])
        for ent in d["entities"]:
            if ent["label"] in mapping:
                gold.add((i, mapping[ent["label"]], ent["start"], ent["end"]))
    return docs, gold


def load_presidio() -> tuple[list[Doc], set[Span]]:
    docs: list[Doc] = []
    gold: set[Span] = set()
    mapping = {"PERSON": "PERSON", "STREET_ADDRESS": "ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER",
               "EMAIL_ADDRESS": "EMAIL_ADDRESS"}  # fmt: skip
    rows = json.loads((SHARED / "presidio-synth" / "synth_dataset_v2.json").read_text("utf-8"))
    for i, r in enumerate(rows):
        docs.append(r["full_text"])
        for s in r["spans"]:
            if s["entity_type"] in mapping:
                gold.add((i, mapping[s["entity_type"]], s["start_position"], s["end_position"]))
    return docs, gold


SETS: dict[str, Callable[[], tuple[list[Doc], set[Span]]]] = {
    "generated": load_generated,
    "cluener-train": lambda: load_cluener("train"),
    "cluener-dev": lambda: load_cluener("dev"),
    "ccf2020": load_ccf,
    "presidio-synth": load_presidio,
}

Runner = Callable[[str], list[tuple[str, int, int]]]


def piguard_runner() -> Runner:
    from piguard.detect import scan_text

    ents = list(ENTITIES)

    def run(text: str) -> list[tuple[str, int, int]]:
        return [(f.entity, f.start, f.end) for f in scan_text(text, entities=ents)]

    run("预热 warm-up：我和王小明去了北京市海淀区中关村大街27号。")  # loads the model before timing
    return run


def detector_throughput(text: str) -> dict[str, float]:
    """MB/s of each PERSON/ADDRESS detector alone, and of all of them, over one text (one core)."""
    from piguard.detect.address import AddressDetector
    from piguard.detect.names import NameDetector

    size = len(text.encode("utf-8")) / 1e6
    out: dict[str, float] = {}
    total = 0.0
    for det in (NameDetector(), AddressDetector()):
        det.find("预热：我和王小明去了北京市海淀区中关村大街27号。")
        t0 = time.perf_counter()
        det.find(text)
        dt = time.perf_counter() - t0
        total += dt
        out[f"{det.name}_mb_per_s"] = round(size / dt, 2)
    out["names_and_address_mb_per_s"] = round(size / total, 2)
    return out


def presidio_runner() -> Runner | None:
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
    except ImportError:
        return None

    class BlankEngine(SpacyNlpEngine):
        # No spaCy model can be downloaded here: a blank English pipeline gives tokens but no NER, so
        # Presidio's PERSON/LOCATION (which come from spaCy NER) stay empty; its regex recognizers run.
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank"}])
            self.nlp = {"en": spacy.blank("en")}

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = AnalyzerEngine(nlp_engine=BlankEngine(), supported_languages=["en"])
    names = {"PERSON": "PERSON", "LOCATION": "ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER",
             "EMAIL_ADDRESS": "EMAIL_ADDRESS"}  # fmt: skip

    def run(text: str) -> list[tuple[str, int, int]]:
        res = engine.analyze(text=text, language="en", entities=list(names))
        # Presidio's own default: every result, whatever its score (its phone recognizer scores 0.4).
        return [(names[r.entity_type], r.start, r.end) for r in res]

    return run


def jionlp_runner() -> Runner | None:
    try:
        import jionlp as jio
    except ImportError:
        return None

    def safe(fn: Callable[..., list[dict[str, Any]]], text: str) -> list[dict[str, Any]]:
        try:
            return fn(text, detail=True)
        except (AttributeError, IndexError, ValueError):  # jionlp crashes on some inputs; count as no finding
            return []

    def run(text: str) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        for item in safe(jio.extract_phone_number, text):
            s, e = item["offset"]
            out.append(("PHONE_NUMBER", s, e))
        for item in safe(jio.extract_email, text):
            s, e = item["offset"]
            out.append(("EMAIL_ADDRESS", s, e))
        # jionlp has no name or address extractor for free text (its location parser reads one address).
        return out

    return run


def score(pred: set[Span], gold: set[Span]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for ent in ENTITIES:
        g = {x for x in gold if x[1] == ent}
        p = {x for x in pred if x[1] == ent}
        if not g and not p:
            continue
        tp = len(g & p)
        prec = tp / len(p) if p else 0.0
        rec = tp / len(g) if g else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[ent] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                    "gold": len(g), "predicted": len(p), "tp": tp}  # fmt: skip
    return out


def evaluate(run: Runner, docs: list[Doc], gold: set[Span], limit_s: float | None) -> dict[str, object]:
    pred: set[Span] = set()
    t0 = time.perf_counter()
    done = 0
    nbytes = 0
    for i, doc in enumerate(docs):
        for ent, s, e in run(doc):
            if ent in ENTITIES:
                pred.add((i, ent, s, e))
        done += 1
        nbytes += len(doc.encode("utf-8")) + 1
        if limit_s is not None and time.perf_counter() - t0 > limit_s:
            break
    dt = time.perf_counter() - t0
    g = {x for x in gold if x[0] < done}
    return {"docs": done, "of_docs": len(docs), "mb": round(nbytes / 1e6, 3), "seconds": round(dt, 3),
            "mb_per_s": round(nbytes / 1e6 / dt, 3), "scores": score(pred, g)}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="*", default=["generated", "cluener-dev", "ccf2020", "presidio-synth"])
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument(
        "--peer-seconds",
        type=float,
        default=60.0,
        help="stop a peer after this many seconds on a set (scored on the documents it finished)",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/person_address.json"))
    args = ap.parse_args()

    tools: dict[str, Runner] = {"piguard": piguard_runner()}
    if not args.no_peers:
        for name, make in (("presidio", presidio_runner), ("jionlp", jionlp_runner)):
            r = make()
            if r is None:
                print(f"{name}: not installed, skipped (pip install -e '.[bench]')", file=sys.stderr)
            else:
                tools[name] = r
    results: dict[str, object] = {"cpu_count": os.cpu_count(), "sets": {}}
    if "generated" in args.sets:
        corpus = (ROOT / "benchmarks/data/detect_corpus.txt").read_text("utf-8")
        results["detector_throughput_generated"] = tp = detector_throughput(corpus)
        print("detectors alone on the generated corpus:", tp)
    for set_name in args.sets:
        docs, gold = SETS[set_name]()
        per_tool: dict[str, object] = {}
        for tool, run in tools.items():
            limit = None if tool == "piguard" else args.peer_seconds
            res = evaluate(run, docs, gold, limit)
            per_tool[tool] = res
            print(f"\n== {set_name} · {tool}: {res['docs']}/{res['of_docs']} docs, {res['mb']} MB, "
                  f"{res['mb_per_s']} MB/s")  # fmt: skip
            for ent, s in res["scores"].items():  # type: ignore[union-attr]
                print(f"   {ent:14s} P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}"
                      f"  (gold {s['gold']}, predicted {s['predicted']})")  # fmt: skip
        results["sets"][set_name] = per_tool  # type: ignore[index]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, ensure_ascii=False, indent=2), "utf-8")
    tmp.replace(out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
