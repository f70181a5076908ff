"""How much of an adapted model's CLUENER dev score is its training seeds: every member of the given models
scored alone, then as ensembles (pairs of consecutive seeds, the first four, all of them).

Train the members first with `adapt_names.py`, e.g. seeds 0-3 and 4-5:

    .venv/bin/python docs/experiments/adapt_names.py --members 4 --seed 0 --model-dir runs/s0123 --out /tmp/a.json
    .venv/bin/python docs/experiments/adapt_names.py --members 2 --seed 4 --model-dir runs/s45 --out /tmp/b.json
    .venv/bin/python docs/experiments/adapt_seeds.py --model-dir runs/s0123 --model-dir runs/s45

Ensembles are put together from the members' own files (a directory of links and a manifest naming them),
so nothing is retrained. Scores are strict, at the default minimum confidence, as `adapt_names.py` scores.
Writes docs/experiments/results/adapt_seeds.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository; this script lives in docs/experiments/
CLUENER = ROOT.parent / "shared" / "data" / "pii-eval" / "cluener"
ENTITIES = ("PERSON", "ADDRESS")


def members_of(model_dir: Path) -> list[tuple[int, Path, dict]]:
    """(seed, member directory, manifest) of each member: member k of a model trained from seed s has seed
    s + k (as `train_model` seeds them)."""
    manifest = json.loads((model_dir / "model.json").read_text("utf-8"))
    first = int(manifest["training"]["settings"]["seed"])
    return [(first + k, model_dir / name, manifest) for k, name in enumerate(manifest["members"])]


def _recipe(manifest: dict) -> dict:
    """How a model was trained, but for its seeds and member count."""
    training = manifest["training"]
    settings = {k: v for k, v in training["settings"].items() if k not in ("seed", "members")}
    return {"sources": training["sources"], "settings": settings, "torch": training["torch"]}


def ensemble(members: list[tuple[int, Path, dict]], where: Path) -> Path:
    """A model directory whose members are links to ``members``' files."""
    where.mkdir()
    names = []
    for k, (_seed, path, _manifest) in enumerate(members):
        (where / f"member-{k}").symlink_to(path.resolve(), target_is_directory=True)
        names.append(f"member-{k}")
    manifest = dict(members[0][2], members=names)
    (where / "model.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    return where


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", action="append", required=True, help="a model adapt_names.py trained")
    ap.add_argument("--out", default=str(ROOT / "docs" / "experiments" / "results" / "adapt_seeds.json"))
    args = ap.parse_args()
    if not (CLUENER / "dev.json").exists():
        print(f"CLUENER not found under {CLUENER}", file=sys.stderr)
        return 2

    from piguard.adapt.labelled import read_labelled
    from piguard.adapt.train import score
    from piguard.detect.adapted import AdaptedModel

    dev = read_labelled([CLUENER / "dev.json"]).examples
    members = sorted((m for d in args.model_dir for m in members_of(Path(d))), key=lambda m: m[0])
    recipes = {json.dumps(_recipe(m[2]), sort_keys=True) for m in members}
    if len(recipes) > 1:
        print("the models were trained with different settings, not only other seeds", file=sys.stderr)
        return 2
    seeds = [seed for seed, _, _ in members]
    groups = [[m] for m in members]
    groups += [members[k : k + 2] for k in range(0, len(members) - 1, 2)]
    groups += [members[:4]] if len(members) > 4 else []
    groups += [members] if len(members) > 2 else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, group in enumerate(groups):
            model = AdaptedModel(ensemble(group, Path(tmp) / str(n)))
            scores = score(model, dev)
            row = {"seeds": [seed for seed, _, _ in group]}
            row.update({e: scores.get(e, {}) for e in ENTITIES})
            rows.append(row)
            print(
                f"seeds {','.join(map(str, row['seeds'])):12s} "
                + "   ".join(
                    f"{e} P {row[e]['precision']:.3f} R {row[e]['recall']:.3f} F1 {row[e]['f1']:.3f}"
                    for e in ENTITIES
                ),
                flush=True,
            )
    singles = [r["PERSON"]["f1"] for r in rows if len(r["seeds"]) == 1]
    summary = {
        "single_members_person_f1_mean": round(statistics.mean(singles), 4),
        "single_members_person_f1_sd": round(statistics.stdev(singles), 4) if len(singles) > 1 else None,
    }
    print(f"single members: PERSON F1 mean {summary['single_members_person_f1_mean']:.3f}", end="")
    print(f", sd {summary['single_members_person_f1_sd']:.3f}" if len(singles) > 1 else "")
    result = {
        "data": "CLUENER2020 dev.json (strict spans, default minimum confidence)",
        "seeds": seeds,
        "training": _recipe(members[0][2]),
        "rows": rows,
        "summary": summary,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
