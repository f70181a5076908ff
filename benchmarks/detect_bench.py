"""Detection benchmark: piguard vs Presidio vs jionlp on the same labelled corpus, in one run.

    pip install -e '.[bench,dev]'
    python benchmarks/detect_bench.py [--mb 4] [--presidio-kb 400] [--jionlp-kb 4096]

Prints MB/s and per-entity precision/recall/F1 for each system and writes
``benchmarks/results/detect.json``.

* Corpus: ``benchmarks/detect_corpus.py`` (Faker zh_CN + en_US, fixed seed, labelled by construction,
  hard negatives planted).
* piguard: the structured detector family (every entity but PERSON/ADDRESS) through ``scan_text``
  (thresholding, overlap resolution and masking included). Throughput is measured in a fresh process
  with ``POLARS_MAX_THREADS=1`` (per core) and again with polars' default thread count.
  When name/address detectors are installed in the default registry, they are measured too.
* Presidio: ``AnalyzerEngine`` with its predefined recognizers on a *blank* spaCy English pipeline (no
  spaCy model can be downloaded here, so its NER-based PERSON/LOCATION cannot fire); the phone
  recognizer is given the CN region besides its defaults, so Chinese numbers are not missed for want
  of configuration. Presidio runs at about 0.1 MB/s, so it scans only the first ``--presidio-kb`` KB
  (whole lines); its precision/recall are measured on that subset and piguard's on the same subset
  are reported beside them.
* jionlp: its ``extract_*`` functions (phone, id card, e-mail, IP, plate); no bank-card, MAC, IMEI,
  passport, GPS or birth-date extractor exists there.
* Peers are called on blocks of whole lines (4 KB for Presidio, 64 KB for jionlp) so that their
  per-call overhead is not charged per line; offsets are shifted back to the whole text.
* The machine is shared: wall-clock MB/s depends on the load (recorded), so piguard's figures are
  also given per CPU-second of the (single-threaded) process.

Scoring: a predicted span is a true positive when a gold span of the same entity matches it; ``strict``
requires identical offsets, ``overlap`` any overlap (one gold span per prediction). Predictions of
entity types a system cannot emit for our taxonomy (Presidio's URL, US_* ...) are dropped; per-entity
scores are only given for entities the system supports. Presidio's DATE_TIME is mapped to
DATE_OF_BIRTH (the nearest it has), its CREDIT_CARD to BANK_CARD.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from detect_corpus import DEFAULT_OUT, load_or_generate  # noqa: E402

RESULTS = HERE / "results" / "detect.json"
STRUCTURED = (
    "CN_RESIDENT_ID",
    "CN_PASSPORT",
    "CN_HK_MACAO_PERMIT",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "BANK_CARD",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "IMEI",
    "CN_LICENCE_PLATE",
    "GPS_COORDINATE",
    "DATE_OF_BIRTH",
    "CN_USCC",
)
PRESIDIO_MAP = {
    "PHONE_NUMBER": "PHONE_NUMBER",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "CREDIT_CARD": "BANK_CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "DATE_TIME": "DATE_OF_BIRTH",
    "PERSON": "PERSON",
    "LOCATION": "ADDRESS",
}
PRESIDIO_SUPPORTS = ("PHONE_NUMBER", "EMAIL_ADDRESS", "BANK_CARD", "IP_ADDRESS", "DATE_OF_BIRTH")
JIONLP_SUPPORTS = ("PHONE_NUMBER", "CN_RESIDENT_ID", "EMAIL_ADDRESS", "IP_ADDRESS", "CN_LICENCE_PLATE")

Span = tuple[str, int, int]


# --- scoring ----------------------------------------------------------------------------------------
def score(gold: list[Span], pred: list[Span], entities: tuple[str, ...]) -> dict[str, dict[str, dict]]:
    """Per-entity precision/recall/F1, strict and overlap matching."""
    out: dict[str, dict[str, dict]] = {"strict": {}, "overlap": {}}
    g_by: dict[str, list[tuple[int, int]]] = defaultdict(list)
    p_by: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for e, s, t in gold:
        g_by[e].append((s, t))
    for e, s, t in pred:
        p_by[e].append((s, t))
    for ent in entities:
        g = sorted(g_by.get(ent, []))
        p = sorted(p_by.get(ent, []))
        gset = set(g)
        strict_tp = sum(1 for x in p if x in gset)
        # Overlap: sweep both sorted lists, each gold span matched at most once.
        ov_tp, j, used = 0, 0, set()
        for s, t in p:
            while j < len(g) and g[j][1] <= s:
                j += 1
            k = j
            while k < len(g) and g[k][0] < t:
                if k not in used:
                    used.add(k)
                    ov_tp += 1
                    break
                k += 1
        for mode, tp in (("strict", strict_tp), ("overlap", ov_tp)):
            prec = tp / len(p) if p else (1.0 if not g else 0.0)
            rec = tp / len(g) if g else (1.0 if not p else 0.0)
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            out[mode][ent] = {
                "gold": len(g),
                "pred": len(p),
                "tp": tp,
                "precision": round(prec, 4),
                "recall": round(rec, 4),
                "f1": round(f1, 4),
            }
    return out


# --- systems ----------------------------------------------------------------------------------------
def piguard_spans(text: str, structured_only: bool = True, include_non_personal: bool = True) -> list[Span]:
    from piguard.detect import Registry, default_registry, scan_text
    from piguard.detect.registry import StructuredDetector

    reg = Registry([StructuredDetector()]) if structured_only else default_registry()
    found = scan_text(text, registry=reg, include_non_personal=include_non_personal)
    return [(f.entity, f.start, f.end) for f in found]


def piguard_timing(
    corpus_dir: Path, mb: float, seed: int, threads: int | None, structured_only: bool
) -> dict:
    """Time piguard in a fresh process (POLARS_MAX_THREADS is read when polars is imported)."""
    env = dict(os.environ)
    env.pop("POLARS_MAX_THREADS", None)
    if threads:
        env["POLARS_MAX_THREADS"] = str(threads)
    code = f"""
import json, sys, time
sys.path.insert(0, {str(HERE)!r})
from pathlib import Path
from detect_corpus import load_or_generate
from detect_bench import piguard_spans
import polars as pl
text, _ = load_or_generate(Path({str(corpus_dir)!r}), {mb!r}, {seed!r})
piguard_spans(text[:20000], {structured_only!r})  # warm-up: compile patterns, load tables
from piguard.detect.structured import find_structured_frame


def best_of(fn, n=3):
    wall = cpu = None
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        wall = w if wall is None else min(wall, w)
        cpu = c if cpu is None else min(cpu, c)
    return wall, cpu


mb_ = len(text.encode("utf-8")) / 1e6
out = {{"mb": mb_, "polars_threads": pl.thread_pool_size()}}
wall, cpu = best_of(lambda: piguard_spans(text, {structured_only!r}))
out.update(seconds=wall, mb_per_s=mb_ / wall, cpu_seconds=cpu, mb_per_cpu_s=mb_ / cpu)
if {structured_only!r}:
    from piguard.detect.structured import _engine, reference_find_structured_frame
    out["engine"] = "compiled (_cscan.c)" if _engine() is not None else "polars reference"
    wall, cpu = best_of(lambda: find_structured_frame(text))
    out.update(detector_mb_per_s=mb_ / wall, detector_mb_per_cpu_s=mb_ / cpu)
    wall, cpu = best_of(lambda: reference_find_structured_frame(text), 1)
    out.update(reference_mb_per_s=mb_ / wall, reference_mb_per_cpu_s=mb_ / cpu)
print(json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def presidio_engine():
    import logging

    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)

    class BlankSpacy(SpacyNlpEngine):
        """spaCy's blank English pipeline: tokenizer only, no model download."""

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank:en"}])

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    nlp = BlankSpacy()
    nlp.load()
    reg = RecognizerRegistry()
    reg.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
    reg.remove_recognizer("PhoneRecognizer")
    reg.add_recognizer(PhoneRecognizer(supported_regions=("CN", *PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS)))
    return AnalyzerEngine(nlp_engine=nlp, registry=reg, supported_languages=["en"])


def _blocks(text: str, size: int) -> list[tuple[int, str]]:
    """(offset, block) pieces of about ``size`` characters cut at line ends, so peers see whole lines and
    pay their per-call overhead once per block rather than once per line."""
    out, pos = [], 0
    while pos < len(text):
        cut = text.find("\n", pos + size)
        end = len(text) if cut < 0 else cut + 1
        out.append((pos, text[pos:end]))
        pos = end
    return out


def presidio_spans(engine, text: str, block: int = 4096) -> list[Span]:
    out: list[Span] = []
    for pos, chunk in _blocks(text, block):
        for r in engine.analyze(chunk, language="en"):
            ent = PRESIDIO_MAP.get(r.entity_type)
            if ent is not None and r.score >= 0.3:
                out.append((ent, pos + r.start, pos + r.end))
    return _dedupe(out)


def jionlp_spans(text: str, block: int = 65536) -> list[Span]:
    import jionlp as jio

    fns = [
        (jio.extract_phone_number, "PHONE_NUMBER"),
        (jio.extract_id_card, "CN_RESIDENT_ID"),
        (jio.extract_email, "EMAIL_ADDRESS"),
        (jio.extract_ip_address, "IP_ADDRESS"),
        (jio.extract_motor_vehicle_licence_plate, "CN_LICENCE_PLATE"),
    ]
    out: list[Span] = []

    def run(fn, ent: str, pos: int, chunk: str) -> None:
        try:
            found = fn(chunk, detail=True)
        except Exception:  # jionlp raises on some inputs; retry line by line, skip lines that still fail
            if "\n" not in chunk.strip("\n"):
                return
            off = 0
            for line in chunk.splitlines(keepends=True):
                run(fn, ent, pos + off, line)
                off += len(line)
            return
        for r in found:
            s, e = r["offset"]
            out.append((ent, pos + s, pos + e))

    for pos, chunk in _blocks(text, block):
        for fn, ent in fns:
            run(fn, ent, pos, chunk)
    return _dedupe(out)


def _dedupe(spans: list[Span]) -> list[Span]:
    """Keep the longest of overlapping same-entity spans (a peer may report a span and its sub-span)."""
    spans = sorted(set(spans), key=lambda x: (x[0], x[1], -x[2]))
    out: list[Span] = []
    for sp in spans:
        if out and out[-1][0] == sp[0] and sp[1] < out[-1][2]:
            continue
        out.append(sp)
    return out


def _prefix(text: str, kb: int) -> str:
    """The first ``kb`` KB of text, cut at a line end."""
    limit = kb * 1024
    cut = text.find("\n", limit)
    return text if cut < 0 or len(text) <= limit else text[: cut + 1]


def _gold(labels: list[dict], upto: int) -> list[Span]:
    return [(x["entity"], x["start"], x["end"]) for x in labels if x["end"] <= upto]


def _mbs(text: str, seconds: float) -> float:
    return len(text.encode("utf-8")) / 1e6 / seconds


def _table(title: str, scores: dict[str, dict], entities: tuple[str, ...]) -> None:
    print(f"\n{title}")
    print(f"  {'entity':<20}{'gold':>7}{'pred':>7}{'P':>8}{'R':>8}{'F1':>8}")
    for e in entities:
        s = scores.get(e)
        if s:
            print(
                f"  {e:<20}{s['gold']:>7}{s['pred']:>7}{s['precision']:>8.4f}{s['recall']:>8.4f}{s['f1']:>8.4f}"  # noqa: E501
            )


SHARED = HERE.parent.parent / "shared" / "data" / "pii-eval"
REAL_SUPPORTS = {
    "piguard": ("PHONE_NUMBER", "EMAIL_ADDRESS", "BANK_CARD", "IP_ADDRESS"),
    "presidio": ("PHONE_NUMBER", "EMAIL_ADDRESS", "BANK_CARD", "IP_ADDRESS"),
    "jionlp": ("PHONE_NUMBER", "EMAIL_ADDRESS", "IP_ADDRESS"),
}


def load_real() -> dict[str, tuple[str, list[Span]]]:
    """Labelled text written by others, as one text per set (documents joined by a newline, so context
    never crosses documents) with gold spans in that text's offsets. Structured entities only."""
    sets: dict[str, tuple[str, list[Span]]] = {}
    synth = SHARED / "presidio-synth" / "synth_dataset_v2.json"
    if synth.exists():
        names = {"PHONE_NUMBER": "PHONE_NUMBER", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "CREDIT_CARD": "BANK_CARD",
                 "IP_ADDRESS": "IP_ADDRESS"}  # fmt: skip
        parts, gold, pos = [], [], 0
        for row in json.loads(synth.read_text("utf-8")):
            for sp in row["spans"]:
                if sp["entity_type"] in names:
                    gold.append(
                        (names[sp["entity_type"]], pos + sp["start_position"], pos + sp["end_position"])
                    )
            parts.append(row["full_text"])
            pos += len(row["full_text"]) + 1
        sets["presidio-synth"] = ("\n".join(parts), gold)
    ccf = SHARED / "ccf2020-privacy" / "ccf2020_privacy_train.jsonl"
    if ccf.exists():
        names = {"mobile": "PHONE_NUMBER", "email": "EMAIL_ADDRESS"}
        parts, gold, pos = [], [], 0
        for line in ccf.read_text("utf-8").split("\n"):  # not splitlines: texts hold U+2028
            if not line.strip():
                continue
            doc = json.loads(line)
            for ent in doc["entities"]:
                if ent["label"] in names:
                    gold.append((names[ent["label"]], pos + ent["start"], pos + ent["end"]))
            parts.append(doc["text"])
            pos += len(doc["text"]) + 1
        sets["ccf2020"] = ("\n".join(parts), gold)
    return sets


def real_data(skip_peers: bool) -> dict:
    """piguard (and the peers) on the labelled sets in ../shared, overlap scoring."""
    out: dict = {}
    engine = None if skip_peers else presidio_engine()
    for name, (text, gold) in load_real().items():
        res: dict = {"chars": len(text), "gold": len(gold)}
        labelled = {e for e, _, _ in gold}
        ents = {k: tuple(e for e in v if e in labelled) for k, v in REAL_SUPPORTS.items()}
        res["piguard"] = score(gold, piguard_spans(text), ents["piguard"])["overlap"]
        if not skip_peers:
            res["presidio"] = score(gold, presidio_spans(engine, text), ents["presidio"])["overlap"]
            res["jionlp"] = score(gold, jionlp_spans(text), ents["jionlp"])["overlap"]
        out[name] = res
        for system in ("piguard", "presidio", "jionlp"):
            if system in res:
                _table(f"{name}: {system} (overlap)", res[system], ents[system])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="piguard vs Presidio vs jionlp on the detection corpus")
    ap.add_argument("--mb", type=float, default=4.0, help="corpus size (MB)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--presidio-kb", type=int, default=400, help="Presidio runs on this prefix only (slow)")
    ap.add_argument("--jionlp-kb", type=int, default=4096, help="jionlp runs on this prefix")
    ap.add_argument("--skip-peers", action="store_true", help="piguard only (for quick iterations)")
    ap.add_argument("--skip-real", action="store_true", help="skip the ../shared labelled sets")
    a = ap.parse_args()

    text, labels = load_or_generate(DEFAULT_OUT, a.mb, a.seed)
    total_mb = len(text.encode("utf-8")) / 1e6
    gold_all = _gold(labels, len(text))
    print(f"corpus: {total_mb:.2f} MB, {len(labels)} labelled spans, seed {a.seed}")
    result: dict = {
        "corpus": {
            "mb": round(total_mb, 3),
            "labels": len(labels),
            "seed": a.seed,
            "generator": "benchmarks/detect_corpus.py",
        },
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "systems": {},
    }

    # piguard: quality on the whole corpus, speed in fresh processes.
    pred = piguard_spans(text)
    pig = score(gold_all, pred, STRUCTURED)
    default_uscc = sum(1 for e, _, _ in piguard_spans(text, include_non_personal=False) if e == "CN_USCC")
    t1 = piguard_timing(DEFAULT_OUT, a.mb, a.seed, 1, True)
    tn = piguard_timing(DEFAULT_OUT, a.mb, a.seed, None, True)
    result["systems"]["piguard"] = {
        "scope": "structured detectors, whole corpus",
        "mb_per_s_1_thread": round(t1["mb_per_s"], 2),
        "mb_per_cpu_s_1_thread": round(t1["mb_per_cpu_s"], 2),
        "engine": t1["engine"],
        "detector_only_mb_per_s_1_thread": round(t1["detector_mb_per_s"], 2),
        "detector_only_mb_per_cpu_s_1_thread": round(t1["detector_mb_per_cpu_s"], 2),
        "reference_engine_mb_per_s_1_thread": round(t1["reference_mb_per_s"], 2),
        "reference_engine_mb_per_cpu_s_1_thread": round(t1["reference_mb_per_cpu_s"], 2),
        "mb_per_s_default_threads": round(tn["mb_per_s"], 2),
        "detector_only_mb_per_s_default_threads": round(tn["detector_mb_per_s"], 2),
        "default_polars_threads": tn["polars_threads"],
        "load_average_at_start": os.getloadavg()[0],
        "cn_uscc_reported_by_default": default_uscc,
        "scores": pig,
    }
    print(
        f"\npiguard structured, scan_text (threshold, overlaps, masks, Findings): "
        f"{t1['mb_per_s']:.1f} MB/s wall, {t1['mb_per_cpu_s']:.1f} MB per CPU-second (POLARS_MAX_THREADS=1); "
        f"{tn['mb_per_s']:.1f} MB/s with {tn['polars_threads']} polars threads"
    )
    print(
        f"piguard structured, {t1['engine']} engine; the polars reference engine: "
        f"{t1['reference_mb_per_s']:.1f} MB/s wall, {t1['reference_mb_per_cpu_s']:.1f} MB per CPU-second"
    )
    print(
        f"piguard structured, detector only (find_structured_frame): "
        f"{t1['detector_mb_per_s']:.1f} MB/s wall, "
        f"{t1['detector_mb_per_cpu_s']:.1f} MB per CPU-second (1 thread); {tn['detector_mb_per_s']:.1f} MB/s "
        f"({tn['polars_threads']} threads); CN_USCC reported by default: {default_uscc}"
    )
    _table("piguard (strict offsets)", pig["strict"], STRUCTURED)

    from piguard.detect import default_registry

    if len(default_registry().detectors) > 1:
        full = piguard_spans(text, structured_only=False)
        ents = (*STRUCTURED, "PERSON", "ADDRESS")
        tf = piguard_timing(DEFAULT_OUT, a.mb, a.seed, 1, False)
        result["systems"]["piguard_full"] = {
            "scope": "all default detectors (structured + names/addresses), whole corpus",
            "detectors": [d.name for d in default_registry().detectors],
            "mb_per_s_1_thread": round(tf["mb_per_s"], 2),
            "scores": score(gold_all, full, ents),
        }
        print(f"\npiguard all detectors: {tf['mb_per_s']:.2f} MB/s (POLARS_MAX_THREADS=1)")
        _table(
            "piguard all detectors (overlap)", result["systems"]["piguard_full"]["scores"]["overlap"], ents
        )

    if not a.skip_peers:
        # Presidio on a prefix; piguard on the same prefix for a like-for-like comparison.
        sub = _prefix(text, a.presidio_kb)
        gold_sub = _gold(labels, len(sub))
        engine = presidio_engine()
        engine.analyze("warm up 13812345678 a@b.com", language="en")
        t0, c0 = time.perf_counter(), time.process_time()
        ppred = presidio_spans(engine, sub)
        pdt, pcpu = time.perf_counter() - t0, time.process_time() - c0
        pres = score(gold_sub, ppred, PRESIDIO_SUPPORTS)
        pig_sub = score(gold_sub, piguard_spans(sub), STRUCTURED)
        result["systems"]["presidio"] = {
            "scope": f"first {len(sub.encode('utf-8')) / 1e6:.3f} MB (whole lines); blank spaCy 'en' pipeline, "  # noqa: E501
            "predefined recognizers, PhoneRecognizer regions + CN",
            "mb_per_s": round(_mbs(sub, pdt), 4),
            "mb_per_cpu_s": round(_mbs(sub, pcpu), 4),
            "supports": list(PRESIDIO_SUPPORTS),
            "entity_map": PRESIDIO_MAP,
            "scores": pres,
            "piguard_on_same_subset": pig_sub,
        }
        print(
            f"\nPresidio: {_mbs(sub, pdt):.3f} MB/s wall, {_mbs(sub, pcpu):.3f} MB per CPU-second, "
            f"on the first {len(sub.encode('utf-8')) / 1e6:.2f} MB"
        )
        _table("Presidio (overlap) on its subset", pres["overlap"], PRESIDIO_SUPPORTS)
        _table("piguard (overlap) on the Presidio subset", pig_sub["overlap"], PRESIDIO_SUPPORTS)

        jsub = _prefix(text, a.jionlp_kb)
        gold_j = _gold(labels, len(jsub))
        import jionlp  # noqa: F401 - import cost (dictionaries) kept out of the timing

        jionlp_spans("热身 13812345678")
        t0, c0 = time.perf_counter(), time.process_time()
        jpred = jionlp_spans(jsub)
        jdt, jcpu = time.perf_counter() - t0, time.process_time() - c0
        jio = score(gold_j, jpred, JIONLP_SUPPORTS)
        result["systems"]["jionlp"] = {
            "scope": f"first {len(jsub.encode('utf-8')) / 1e6:.3f} MB (whole lines); extract_phone_number, "
            "extract_id_card, extract_email, extract_ip_address, extract_motor_vehicle_licence_plate",
            "mb_per_s": round(_mbs(jsub, jdt), 3),
            "mb_per_cpu_s": round(_mbs(jsub, jcpu), 3),
            "supports": list(JIONLP_SUPPORTS),
            "scores": jio,
        }
        print(
            f"\njionlp: {_mbs(jsub, jdt):.2f} MB/s wall, {_mbs(jsub, jcpu):.2f} MB per CPU-second, "
            f"on the first {len(jsub.encode('utf-8')) / 1e6:.2f} MB"
        )
        _table("jionlp (overlap)", jio["overlap"], JIONLP_SUPPORTS)

        pg, pr = result["systems"]["piguard"], result["systems"]["presidio"]
        ratios = {
            "scan_text_wall": pg["mb_per_s_1_thread"] / max(pr["mb_per_s"], 1e-9),
            "scan_text_cpu": pg["mb_per_cpu_s_1_thread"] / max(pr["mb_per_cpu_s"], 1e-9),
            "detector_cpu": pg["detector_only_mb_per_cpu_s_1_thread"] / max(pr["mb_per_cpu_s"], 1e-9),
        }
        result["piguard_vs_presidio_throughput"] = {k: round(v, 1) for k, v in ratios.items()}
        print(
            "\npiguard / Presidio throughput (1 polars thread): "
            + ", ".join(f"{k} {v:.0f}x" for k, v in ratios.items())
        )

    if not a.skip_real:
        print("\nLabelled text written by others (../shared/data/pii-eval), structured entities:")
        result["real_data"] = real_data(a.skip_peers)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(RESULTS)
    print(f"\nwrote {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
