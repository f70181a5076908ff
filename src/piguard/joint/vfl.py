"""Vertical federated logistic regression (the FATE / SecretFlow hetero-LR pattern for credit risk), with
Paillier through ``phe``.

Parties: the **lender** L (client) holds the labels and some features of its applicants; the **provider**
P (server) holds other features of its customers. Neither sends a raw feature or a label.

1. Alignment: ECDH-PSI (``psi``) on the two parties' identifiers; L learns the common rows and tells P their
   places in P's own shuffled order, so P knows which of its rows take part (inherent to vertical training:
   both sides must know the aligned samples) and no identifier travels.
2. Keys: L generates a Paillier key pair (2048-bit by default) for the session and sends the public key;
   only L can decrypt. P holds no key.
3. Each mini-batch: P sends its partial linear scores u_P = X_P w_P (plaintext); L computes the exact
   residuals d = sigmoid(u_L + u_P + b) - y, updates its own weights, and sends [[d]] (encrypted under its
   key). P computes its encrypted gradient [[X_P^T d]] homomorphically, adds a random mask r and sends
   [[g + r]]; L decrypts and returns g + r; P removes r and updates w_P.
4. Scoring one applicant: P returns u_P for the applicant's identifier; L adds its part and the sigmoid.

What each party can infer: L learns P's partial scores u_P per aligned sample and batch (one linear
combination of P's features per sample, with weights L does not know), never P's features or weights. P
learns which of its customers are L's applicants (step 1), its own gradients (aggregates of residuals
over a batch, as in every vertical LR), never a label or L's features: the residuals reach it encrypted.
A scoring request tells P which applicant is scored. Semi-honest parties are assumed.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from phe import paillier

from piguard.joint import ecdh, wire
from piguard.joint.errors import InputError, MalformedMessageError, PeerError
from piguard.joint.limits import Limits
from piguard.joint.psi import PsiServer, RunRecord, _State, exchange
from piguard.joint.transport import Client
from piguard.keys import PublicKey, SigningKey, TrustStore

PROTOCOL = "vfl-lr-paillier"
SCORE_PROTOCOL = "vfl-lr-score"
PRECISION_EXP = -12  # residuals are encoded with one fixed exponent (base 16) so sums stay cheap
FEATURE_SCALE = 1 << 32  # non-binary provider features as integers (x * 2^32) for ciphertext products
MASK_BITS = 128  # gradient masks: far above the masked values' size (statistical hiding)


# --- features -----------------------------------------------------------------------------------------------
@dataclass
class Encoding:
    """How a party's columns become numbers: numeric columns standardised, others one-hot."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # column: (mean, std)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *(f"{c}={v}" for c, vs in self.categories.items() for v in vs)]

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": {k: list(v) for k, v in self.numeric.items()}, "categories": self.categories}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Encoding:
        return cls({k: (float(v[0]), float(v[1])) for k, v in d["numeric"].items()}, dict(d["categories"]))

    @classmethod
    def fit(cls, frame: pl.DataFrame, columns: Sequence[str]) -> Encoding:
        enc = cls()
        for c in columns:
            if c not in frame.columns:
                raise InputError(
                    f"feature column {c!r} is not in the table; columns: {', '.join(frame.columns)}"
                )
            nums = frame[c].cast(pl.Float64, strict=False)
            if nums.null_count() == frame[c].null_count() and frame.height:
                std = float(nums.std() or 1.0) or 1.0
                enc.numeric[c] = (float(nums.mean() or 0.0), std)
            else:
                enc.categories[c] = sorted(str(v) for v in frame[c].drop_nulls().unique().to_list())
        return enc

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        cols: list[np.ndarray] = []
        for c, (mean, std) in self.numeric.items():
            cols.append(((frame[c].cast(pl.Float64, strict=False).fill_null(mean).to_numpy()) - mean) / std)
        for c, vs in self.categories.items():
            s = frame[c].cast(pl.String)
            cols.extend((s == v).fill_null(False).to_numpy().astype(np.float64) for v in vs)
        return np.column_stack(cols) if cols else np.zeros((frame.height, 0))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


# --- Paillier helpers ---------------------------------------------------------------------------------------
def _ct_bytes(pk: paillier.PaillierPublicKey) -> int:
    return (pk.nsquare.bit_length() + 7) // 8


def _pt_bytes(pk: paillier.PaillierPublicKey) -> int:
    return (pk.n.bit_length() + 7) // 8


def _pack_cts(pk: paillier.PaillierPublicKey, cts: Sequence[int]) -> bytes:
    size = _ct_bytes(pk)
    return b"".join(int(c).to_bytes(size, "big") for c in cts)


def _unpack_cts(pk: paillier.PaillierPublicKey, data: bytes) -> list[int]:
    size = _ct_bytes(pk)
    if len(data) % size:
        raise MalformedMessageError("ciphertext payload is not a whole number of ciphertexts")
    out = [int.from_bytes(data[i : i + size], "big") for i in range(0, len(data), size)]
    if any(not 0 < c < pk.nsquare for c in out):
        raise MalformedMessageError("a ciphertext is out of range")
    return out


_POOL_KEY: paillier.PaillierPublicKey | None = None


def _pool_init(n: int) -> None:
    global _POOL_KEY
    _POOL_KEY = paillier.PaillierPublicKey(n)


def _encrypt_chunk(values: list[float]) -> list[int]:
    pk = _POOL_KEY
    assert pk is not None
    enc = paillier.EncodedNumber
    # precision 1.5 * 16^-12 gives exponent -12 exactly (floor of log16), whatever the value's magnitude.
    precision = 1.5 * 16.0**PRECISION_EXP
    return [pk.raw_encrypt(enc.encode(pk, v, precision=precision).encoding) for v in values]


class Encryptor:
    """Paillier encryption of residuals, spread over worker processes (gmpy2 keeps the GIL)."""

    def __init__(self, pk: paillier.PaillierPublicKey, workers: int = 2) -> None:
        self.pk = pk
        self.pool = ProcessPoolExecutor(max_workers=workers, initializer=_pool_init, initargs=(pk.n,))
        self.workers = workers

    def encrypt(self, values: np.ndarray) -> list[int]:
        vals = [float(v) for v in values]
        step = max(1, math.ceil(len(vals) / (self.workers * 2)))
        parts = self.pool.map(_encrypt_chunk, [vals[i : i + step] for i in range(0, len(vals), step)])
        return [c for part in parts for c in part]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --- provider (server) --------------------------------------------------------------------------------------
class TrainServer(PsiServer):
    """The provider: PSI alignment, then its side of every training step; writes its model part at the end."""

    name = PROTOCOL

    def __init__(
        self,
        keys: Sequence[str],
        features: np.ndarray,
        encoding: Encoding,
        *,
        purpose: str,
        legal_basis: str,
        on_model: Callable[[dict[str, Any]], None],
        limits: Limits | None = None,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        super().__init__(keys, purpose=purpose, legal_basis=legal_basis, limits=limits, on_run=on_run)
        if features.shape[0] != len(keys):
            raise InputError("one feature row per distinct identifier is needed")
        self.features, self.encoding, self.on_model = features, encoding, on_model

    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        n_hex = wire.field_str(hello, "paillier_n", "hello", 2048)
        try:
            n = int(n_hex, 16)
        except ValueError:
            raise MalformedMessageError("hello: paillier_n is not hexadecimal") from None
        if n.bit_length() < 1024:
            raise MalformedMessageError("hello: the Paillier key must have at least 1024 bits")
        lr = float(hello.get("lr", 0.1))
        l2 = float(hello.get("l2", 0.0))
        momentum = float(hello.get("momentum", 0.0))
        if not (0 < lr <= 10 and 0 <= l2 <= 10 and 0 <= momentum < 1):
            raise MalformedMessageError("hello: lr, l2 or momentum out of range")
        params = super().accept({**hello, "mode": "intersection"}, peer, session_id)
        st = self.states[session_id]
        st.extra = {
            "pk": paillier.PaillierPublicKey(n),
            "lr": lr,
            "momentum": momentum,
            "l2": l2,
            "w": np.zeros(self.features.shape[1]),
            "v": np.zeros(self.features.shape[1]),
            "rows": None,
            "mask": None,
            "batch": None,
        }
        return {**params, "features": self.features.shape[1]}

    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        kind = msg.header.get("type")
        if kind in ("blinded", "server_chunk", "double_chunk"):
            return super().handle(session, msg)
        st: _State = self._state(session)
        x = st.extra
        if kind == "align":
            pos = np.frombuffer(msg.payload, dtype=">u4").astype(np.int64)
            if len(st.order) != len(self.points) or (pos.size and (pos.max() >= len(st.order))):
                raise MalformedMessageError("align: a position is out of range")
            if len(set(pos.tolist())) != pos.size:
                raise MalformedMessageError("align: a position is repeated")
            order = np.asarray(st.order)
            x["rows"] = self.features[order[pos]]
            return {"aligned": int(pos.size)}, b""
        if x.get("rows") is None:
            raise MalformedMessageError(f"{kind} before align")
        rows: np.ndarray = x["rows"]
        if kind == "forward":
            idx = self._batch(msg.payload, rows.shape[0])
            x["batch"] = idx
            return {}, (rows[idx] @ x["w"]).astype(">f8").tobytes()
        if kind == "gradient":
            idx = x.get("batch")
            if idx is None:
                raise MalformedMessageError("gradient before forward")
            pk = x["pk"]
            cts = _unpack_cts(pk, msg.payload)
            if len(cts) != idx.size:
                raise MalformedMessageError("gradient: one ciphertext per sample of the batch is needed")
            xb = rows[idx]
            binary = np.all((xb == 0) | (xb == 1), axis=0)
            scale = np.where(binary, 1.0, float(FEATURE_SCALE))
            xi = np.rint(xb * scale).astype(np.int64)  # integer features keep the residuals' exponent
            enc = [paillier.EncryptedNumber(pk, c, PRECISION_EXP) for c in cts]
            # Masks are uniform 128-bit integers added in the plaintext space (mod n): the gradient's encoding
            # is below 2^80, so what the lender decrypts is statistically independent of it, and the provider
            # recovers it exactly (no float rounding).
            masks = [secrets.randbits(MASK_BITS) for _ in range(xi.shape[1])]
            out: list[int] = []
            for j in range(xi.shape[1]):
                total = None
                for i in np.flatnonzero(xi[:, j]):
                    term = enc[i] if xi[i, j] == 1 else enc[i] * int(xi[i, j])
                    total = term if total is None else total + term
                if total is None:  # no sample in the batch has this feature: encrypt the mask afresh
                    out.append(pk.raw_encrypt(masks[j]))
                else:  # masked, then re-randomised: the lender cannot tell which ciphertexts were summed
                    masked = paillier.EncryptedNumber(
                        pk,
                        total.ciphertext(False) * pk.raw_encrypt(masks[j], r_value=1) % pk.nsquare,
                        PRECISION_EXP,
                    )
                    masked.obfuscate()
                    out.append(masked.ciphertext(False))
            x["mask"], x["scale"] = masks, scale
            return {"exponent": PRECISION_EXP}, _pack_cts(pk, out)
        if kind == "update":
            idx, mask = x.get("batch"), x.get("mask")
            if idx is None or mask is None:
                raise MalformedMessageError("update before gradient")
            pk = x["pk"]
            size = _pt_bytes(pk)
            if len(msg.payload) != size * len(mask):
                raise MalformedMessageError("update: one value per feature is needed")
            vals = [int.from_bytes(msg.payload[k * size : (k + 1) * size], "big") for k in range(len(mask))]
            enc_g = [(v - m) % pk.n for v, m in zip(vals, mask, strict=True)]
            signed = [g - pk.n if g > pk.n // 2 else g for g in enc_g]
            grad = np.array([float(g) for g in signed]) * float(16.0**PRECISION_EXP) / x["scale"] / idx.size
            x["v"] = x["momentum"] * x["v"] + grad + x["l2"] * x["w"]  # heavy-ball momentum, as the lender
            x["w"] = x["w"] - x["lr"] * x["v"]
            x["batch"], x["mask"] = None, None
            return {}, b""
        if kind == "finish":
            st.received = st.n_client  # alignment done; PsiServer.finish checks it
            st.complete = True
            self.on_model(
                {
                    "role": "provider",
                    "weights": x["w"].tolist(),
                    "encoding": self.encoding.to_dict(),
                    "features": self.encoding.names,
                    "partner": st.peer.key_id,
                    "aligned": int(rows.shape[0]),
                }
            )
            return {}, b""
        raise MalformedMessageError(f"unknown message type {kind!r}")

    @staticmethod
    def _batch(payload: bytes, n: int) -> np.ndarray:
        idx = np.frombuffer(payload, dtype=">u4").astype(np.int64)
        if not idx.size or idx.max() >= n:
            raise MalformedMessageError("batch indices are out of range")
        return idx


# --- lender (client) ----------------------------------------------------------------------------------------
@dataclass
class LenderModel:
    weights: list[float]
    bias: float
    encoding: Encoding
    aligned: int
    history: list[dict[str, float]]
    partner: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": "lender",
            "weights": self.weights,
            "bias": self.bias,
            "encoding": self.encoding.to_dict(),
            "features": self.encoding.names,
            "aligned": self.aligned,
            "history": self.history,
            "partner": self.partner,
        }


def train(
    url: str,
    keys: Sequence[str],
    features: np.ndarray,
    labels: np.ndarray,
    encoding: Encoding,
    *,
    me: SigningKey,
    trust: TrustStore,
    purpose: str,
    legal_basis: str,
    epochs: int = 3,
    batch: int = 512,
    lr: float = 0.5,
    l2: float = 0.0,
    momentum: float = 0.0,
    key_bits: int = 2048,
    seed: int = 0,
    workers: int = 2,
    timeout: float = 3600.0,
    log: Callable[[dict[str, float]], None] | None = None,
) -> LenderModel:
    """Train with the provider at ``url``; ``features`` and ``labels`` follow the distinct ``keys``."""
    if features.shape[0] != len(keys) or labels.shape[0] != len(keys):
        raise InputError("one feature row and one label per distinct identifier are needed")
    pk, sk = paillier.generate_paillier_keypair(n_length=key_bits)
    points = ecdh.hash_points(keys)
    rng = np.random.default_rng(seed)
    enc = Encryptor(pk, workers)
    try:
        with Client(url, me, trust, timeout=timeout) as client:
            welcome = client.hello(
                PROTOCOL,
                {
                    "mode": "intersection",
                    "n": len(points),
                    "purpose": purpose,
                    "legal_basis": legal_basis,
                    "paillier_n": format(pk.n, "x"),
                    "lr": lr,
                    "l2": l2,
                    "momentum": momentum,
                },
            )
            n_provider = wire.field_int(welcome, "features", "welcome", 0, 100_000)
            ex = exchange(client, points, welcome, "intersection")
            assert ex.matched is not None and ex.positions is not None
            if len(ex.matched) < 2:
                raise InputError(
                    f"only {len(ex.matched)} samples are common to both parties; nothing to train on"
                )
            client.call("align", {}, np.asarray(ex.positions, dtype=">u4").tobytes())
            xl = features[np.asarray(ex.matched)]
            y = labels[np.asarray(ex.matched)].astype(np.float64)
            w = np.zeros(xl.shape[1])
            b = 0.0
            vw, vb = np.zeros_like(w), 0.0  # heavy-ball momentum (the provider keeps its own)
            history: list[dict[str, float]] = []
            n = xl.shape[0]
            for epoch in range(epochs):
                t0 = time.perf_counter()
                order = rng.permutation(n)
                loss = 0.0
                for start in range(0, n, batch):
                    idx = order[start : start + batch]
                    u_p = np.frombuffer(
                        client.call("forward", {}, idx.astype(">u4").tobytes()).payload, dtype=">f8"
                    )
                    if u_p.size != idx.size:
                        raise PeerError("the provider's partial scores do not match the batch")
                    z = xl[idx] @ w + b + u_p
                    p = _sigmoid(z)
                    d = p - y[idx]
                    loss += float(-np.sum(y[idx] * np.log(p + 1e-12) + (1 - y[idx]) * np.log(1 - p + 1e-12)))
                    vw = momentum * vw + xl[idx].T @ d / idx.size + l2 * w
                    vb = momentum * vb + float(d.mean())
                    w -= lr * vw
                    b -= lr * vb
                    reply = client.call("gradient", {}, _pack_cts(pk, enc.encrypt(d)))
                    cts = _unpack_cts(pk, reply.payload)
                    if len(cts) != n_provider:
                        raise MalformedMessageError("gradient reply: one ciphertext per provider feature")
                    # The masked plaintexts go back as they are (mod n); the provider removes its masks.
                    size = _pt_bytes(pk)
                    client.call("update", {}, b"".join(sk.raw_decrypt(c).to_bytes(size, "big") for c in cts))
                entry = {"epoch": epoch + 1, "loss": loss / n, "seconds": round(time.perf_counter() - t0, 2)}
                history.append(entry)
                if log:
                    log(entry)
            client.call("finish", {"status": "complete"})
            peer = client.session.peer if client.session else None
    finally:
        enc.close()
    return LenderModel(w.tolist(), b, encoding, n, history, peer.key_id if peer else "")


# --- joint scoring ------------------------------------------------------------------------------------------
class ScoreServer:
    """The provider's side of scoring: its partial score for an applicant it holds (by canonical key)."""

    name = SCORE_PROTOCOL

    def __init__(
        self,
        keys: Sequence[str],
        features: np.ndarray,
        model: dict[str, Any],
        *,
        purpose: str,
        legal_basis: str,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.index = {k: i for i, k in enumerate(keys)}
        self.features = features
        self.w = np.asarray(model["weights"], dtype=np.float64)
        if self.w.size != features.shape[1]:
            raise InputError("the model part does not fit this table's encoded features")
        self.purpose, self.legal_basis, self.on_run = purpose, legal_basis, on_run
        self.peers: dict[str, tuple[PublicKey, int, float]] = {}
        self._lock = threading.Lock()

    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        if wire.field_str(hello, "purpose", "hello") != self.purpose:
            raise MalformedMessageError(
                "the scoring request's purpose is not the purpose this provider declared"
            )
        with self._lock:
            self.peers[session_id] = (peer, 0, time.monotonic())
        return {"purpose": self.purpose}

    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        if msg.header.get("type") == "finish":
            return {}, b""
        if msg.header.get("type") != "score":
            raise MalformedMessageError("unknown message type")
        keys = msg.header.get("keys")
        if (
            not isinstance(keys, list)
            or not keys
            or len(keys) > 10_000
            or not all(isinstance(k, str) for k in keys)
        ):
            raise MalformedMessageError("score: 'keys' must be a list of 1 to 10000 identifiers")
        rows = [self.index.get(k) for k in keys]
        out = np.array([self.features[r] @ self.w if r is not None else np.nan for r in rows])
        with self._lock:
            peer, count, t = self.peers[session.id]
            self.peers[session.id] = (peer, count + len(keys), t)
        return {"found": sum(r is not None for r in rows)}, out.astype(">f8").tobytes()

    def closed(self, session: wire.Session, complete: bool) -> None:
        with self._lock:
            peer, count, t = self.peers.pop(session.id, (None, 0, 0.0))
        if peer is None or self.on_run is None:
            return
        self.on_run(
            RunRecord(
                role="provider",
                mode="score",
                partner=peer.owner or peer.key_id,
                partner_key_id=peer.key_id,
                purpose=self.purpose,
                legal_basis=self.legal_basis,
                own_set_size=len(self.index),
                partner_set_size=count,
                complete=complete,
                seconds=round(time.monotonic() - t, 3),
            )
        )


def score(
    url: str,
    keys: Sequence[str],
    features: np.ndarray,
    model: dict[str, Any],
    *,
    me: SigningKey,
    trust: TrustStore,
    purpose: str,
    legal_basis: str,
) -> np.ndarray:
    """Probability of the positive class for each applicant (NaN where the provider does not hold it)."""
    w = np.asarray(model["weights"], dtype=np.float64)
    with Client(url, me, trust) as client:
        client.hello(SCORE_PROTOCOL, {"purpose": purpose, "legal_basis": legal_basis})
        reply = client.call("score", {"keys": list(keys)})
        client.call("finish", {})
    u_p = np.frombuffer(reply.payload, dtype=">f8").astype(np.float64)
    if u_p.size != len(keys):
        raise PeerError("the provider did not score every applicant")
    return _sigmoid(features @ w + float(model["bias"]) + u_p)
