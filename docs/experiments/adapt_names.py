"""An adapted model (LAC fine-tuned on CLUENER's train split) against the shipped detectors, on CLUENER dev
and on a slice of the generated corpus.

The shipped PERSON/ADDRESS detectors are rules plus LAC as Baidu trained it. `piguard model train` fine-tunes
LAC on a user's own labelled text; this script does that with CLUENER's train split (research-use data: the
model is written outside the repository and never shipped) and scores both on the dev split, strictly
(label, start and end must all match; CLUENER's inclusive ends are converted).

    .venv/bin/python docs/experiments/adapt_names.py                 # train (3 members, 8 epochs) and score
    .venv/bin/python docs/experiments/adapt_names.py --members 1     # one member (several train one per core)
    .venv/bin/python docs/experiments/adapt_names.py --reuse         # score a model trained earlier
    .venv/bin/python docs/experiments/adapt_names.py --ccf           # also train on CCF 2020 text CLUENER lacks
    .venv/bin/python docs/experiments/adapt_names.py --extra msra_train.txt --extra-needs PERSON
                                                  # also train on another corpus's sentences with a name
    .venv/bin/python docs/experiments/adapt_names.py --extra msra_train.txt --extra-needs PERSON --extra-head own
                                                  # ... through an output layer and CRF of their own

Writes docs/experiments/results/adapt.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository; this script lives in docs/experiments/
CLUENER = ROOT.parent / "shared" / "data" / "pii-eval" / "cluener"
CCF = ROOT.parent / "shared" / "data" / "pii-eval" / "ccf2020-privacy" / "ccf2020_privacy_train.jsonl"
ENTITIES = ("PERSON", "ADDRESS")


def run_scan(texts: list[str], registry) -> tuple[list[set[tuple[int, int, str]]], float]:
    from piguard.detect import scan_text

    scan_text("预热：我和王小明去了北京市海淀区中关村大街27号。", entities=ENTITIES, registry=registry)
    t0 = time.perf_counter()
    pred = [
        {(f.start, f.end, f.entity) for f in scan_text(t, entities=ENTITIES, registry=registry)}
        for t in texts
    ]
    return pred, time.perf_counter() - t0


def unseen_passages(examples, seen_texts: list[str], k: int = 12, min_chars: int = 10) -> list:
    """The passages of ``examples`` that share no ``k``-character run with ``seen_texts``, spans kept.

    CCF BDCI 2020's privacy documents are mostly CLUENER sentences joined together (841 of dev's 1,343
    sentences are in them), with other text between. Only that other text may be trained on: a passage ends
    where a run of a CLUENER sentence (train or dev) begins, and a span cut by that end is left out.
    """
    from piguard.adapt.labelled import LabelledText

    seen = {t[i : i + k] for t in seen_texts for i in range(len(t) - k + 1)}
    out = []
    for ex in examples:
        text = ex.text
        covered = [False] * len(text)
        for i in range(len(text) - k + 1):
            if text[i : i + k] in seen:
                covered[i : i + k] = [True] * k
        i = 0
        while i < len(text):
            if covered[i]:
                i += 1
                continue
            j = i
            while j < len(text) and not covered[j]:
                j += 1
            start, end = i, j
            for a, b, _ in ex.spans:  # never cut a span: leave it out of the passage
                if a < start < b:
                    start = b
                if a < end < b:
                    end = a
            while start < end and text[start] in "，,。 ":
                start += 1
            if end - start >= min_chars:
                spans = tuple(
                    (a - start, b - start, lab) for a, b, lab in ex.spans if start <= a and b <= end
                )
                out.append(LabelledText(text[start:end], spans))
            i = j
    return out


def generated_slice(mb: float) -> tuple[list[str], list[set[tuple[int, int, str]]]]:
    """Whole lines from the start of the generated corpus (about ``mb`` MB), with their labels."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from detect_corpus import load_or_generate

    text, labels = load_or_generate()
    cut = text.find("\n", len(text.encode("utf-8")[: int(mb * 1e6)].decode("utf-8", "ignore"))) + 1
    gold = {
        (int(d["start"]), int(d["end"]), str(d["entity"]))
        for d in labels
        if d["entity"] in ENTITIES and int(d["end"]) <= cut
    }
    return [text[:cut]], [gold]


def main() -> int:
    from piguard.adapt.train import TrainSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-base", type=float, default=TrainSettings.keep_base)
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/piguard/models/cluener-train"))
    ap.add_argument(
        "--ccf",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also train on the CCF 2020 passages that are in neither CLUENER split",
    )
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        help="another labelled file to train on (its passages that share no 12-character run with CLUENER)",
    )
    ap.add_argument(
        "--extra-needs",
        default="",
        help="train only on the extra passages (--ccf, --extra) holding this label (PERSON: with a name)",
    )
    ap.add_argument(
        "--swap",
        default=",".join(TrainSettings.swap_labels),
        help="labels whose mentions are swapped in the augmented copy (comma-separated; 'all': every label)",
    )
    ap.add_argument(
        "--extra-head",
        choices=("shared", "own"),
        default="shared",
        help="extra passages share the output layer and CRF, or train the encoder through their own",
    )
    ap.add_argument("--swap-copies", type=int, default=TrainSettings.swap_copies)
    ap.add_argument("--reuse", action="store_true", help="score the model already in --model-dir")
    ap.add_argument(
        "--generated-mb", type=float, default=0.25, help="how much of the generated corpus to score"
    )
    ap.add_argument("--out", default=str(ROOT / "docs" / "experiments" / "results" / "adapt.json"))
    args = ap.parse_args()
    if not (CLUENER / "train.json").exists():
        print(f"CLUENER not found under {CLUENER}", file=sys.stderr)
        return 2

    from piguard.adapt.labelled import read_labelled
    from piguard.adapt.train import strict_scores, train_model
    from piguard.detect import Registry

    train = read_labelled([CLUENER / "train.json"]).examples
    dev = read_labelled([CLUENER / "dev.json"]).examples
    sources = ["CLUENER2020 train.json"]
    auxiliary: list = []
    for extra_path in ([CCF] if args.ccf else []) + [Path(x) for x in args.extra]:
        extra = unseen_passages(read_labelled([extra_path]).examples, [ex.text for ex in train + dev])
        if args.extra_needs:
            extra = [ex for ex in extra if any(lab == args.extra_needs for _, _, lab in ex.spans)]
        source = f"{extra_path.name}: {len(extra)} passages in neither CLUENER split"
        if args.extra_head == "own":
            auxiliary += extra
            source += ", read through an output layer of their own"
        else:
            train = train + extra
        print(source)
        sources.append(source)
    model_dir = Path(args.model_dir)
    if not args.reuse:
        settings = TrainSettings(
            epochs=args.epochs,
            members=args.members,
            seed=args.seed,
            holdout=0.0,
            keep_base=args.keep_base,
            swap_copies=args.swap_copies,
            swap_labels=tuple(
                sorted({lab for ex in train for _, _, lab in ex.spans})
                if args.swap == "all"
                else [lab for lab in args.swap.split(",") if lab]
            ),
        )
        print(f"training on {len(train)} examples, {args.members} member(s) x {args.epochs} epochs")
        report = train_model(
            train,
            model_dir,
            settings=settings,
            name="cluener-train",
            sources=sources,
            overwrite=True,
            progress=lambda m: print("  " + m, flush=True),
            auxiliary=auxiliary,
        )
        print(f"  trained in {report.seconds:.0f} s")

    manifest = json.loads((model_dir / "model.json").read_text("utf-8"))
    results: dict = {
        "model": {"members": len(manifest["members"]), "training": manifest["training"]},
        "cpu_count": os.cpu_count(),
    }
    # CLUENER dev (the domain it was adapted to) and a slice of the generated corpus (another domain: what
    # adapting to one labelling costs on text labelled another way).
    dev_texts = [ex.text for ex in dev]
    dev_gold = [{(s, e, lab) for s, e, lab in ex.spans if lab in ENTITIES} for ex in dev]
    gen_texts, gen_gold = generated_slice(args.generated_mb)
    registries = {"shipped": Registry.default(), "adapted": Registry.default().use_model(model_dir)}
    for set_name, texts, gold in (("cluener-dev", dev_texts, dev_gold), ("generated", gen_texts, gen_gold)):
        size = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        results[set_name] = {"mb": round(size, 3), "documents": len(texts)}
        for label, reg in registries.items():
            pred, dt = run_scan(texts, reg)
            s = strict_scores(pred, gold, ENTITIES)
            results[set_name][label] = {"scores": s, "seconds": round(dt, 2), "mb_per_s": round(size / dt, 3)}
            print(
                f"== {set_name:11s} {label:8s} {size / dt:6.3f} MB/s   "
                + "   ".join(
                    f"{e} P {s[e]['precision']:.3f} R {s[e]['recall']:.3f} F1 {s[e]['f1']:.3f}"
                    for e in ENTITIES
                )
            )
    results["load"] = round(os.getloadavg()[0], 2)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
