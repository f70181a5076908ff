"""Two-party private set intersection (ECDH-PSI on Curve25519), streamed in chunks over the session.

Roles: the **querier** (client, set X, secret scalar a) learns the intersection, or with ``cardinality``
only its size; the **server** (set Y, secret scalar b) learns |X| and nothing else. Scalars are fresh for
every session.

1. hello/welcome (``wire``): purpose, legal basis, mode, |X|; the server checks them and its per-partner
   limits, answers with |Y|, and at once starts blinding its own shuffled set, H(y)^b, on a worker thread.
2. The querier blinds X chunk by chunk, H(x)^a, and sends each chunk as soon as it is ready; the server
   answers with H(x)^ab in the same order (cardinality: it keeps them, and at the end returns them
   shuffled, so the querier cannot tell which of its own identifiers matched). Meanwhile a second querier
   thread fetches the server's chunks H(y)^b and raises them to a. So both processes work at once.
3. The querier compares H(x)^ab with H(y)^ba. It checks that it received exactly |Y| and |X| values; a
   short answer (a peer that went away, a lost chunk) is an error, never a partial intersection.
4. ``finish`` tells the server the run is complete (it logs the run with both set sizes only).

Only points of the form H(.)^a, H(.)^b, H(.)^ab travel; a raw identifier or its plain hash never does.
Security is semi-honest (each party follows the protocol); see docs/joint.md.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from piguard.joint import ecdh, wire
from piguard.joint.errors import MalformedMessageError, NotLawfulError, PeerError, SessionError
from piguard.joint.limits import Limit, Limits
from piguard.joint.transport import Client
from piguard.keys import PublicKey, SigningKey, TrustStore

PROTOCOL = "ecdh-psi-x25519"
MODES = ("intersection", "cardinality")
DEFAULT_CHUNK = 1 << 16
_WAIT = 600.0


@dataclass
class RunRecord:
    """What is logged about a run: sizes and timings, never an identifier."""

    role: str
    mode: str
    partner: str
    partner_key_id: str
    purpose: str
    legal_basis: str
    own_set_size: int
    partner_set_size: int
    intersection_size: int | None = None
    complete: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _State:
    peer: PublicKey
    mode: str
    n_client: int
    purpose: str
    legal_basis: str
    scalar: bytes
    chunk: int
    started: float = field(default_factory=time.monotonic)
    server_chunks: list[bytes | None] = field(default_factory=list)
    server_ready: list[threading.Event] = field(default_factory=list)
    server_error: Exception | None = None
    next_index: int = 0
    received: int = 0
    doubled: list[bytes] = field(default_factory=list)
    shuffled: bytes | None = None
    complete: bool = False
    order: list[int] = field(default_factory=list)
    closed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class PsiServer:
    """The serving party: holds Y (canonical keys), answers queries of trusted partners within limits."""

    name = PROTOCOL

    def __init__(
        self,
        keys: Sequence[str],
        *,
        purpose: str,
        legal_basis: str,
        limits: Limits | None = None,
        chunk: int = DEFAULT_CHUNK,
        on_run: Callable[[RunRecord], None] | None = None,
        workers: int = 2,
    ) -> None:
        if not purpose or not legal_basis:
            raise NotLawfulError("a PSI server needs a declared purpose and legal basis")
        self.points = ecdh.hash_points(keys)
        self.purpose, self.legal_basis = purpose, legal_basis
        self.limits = limits or Limits(Limit())
        self.chunk = chunk
        self.on_run = on_run
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="psi-blind")
        self.states: dict[str, _State] = {}
        self._lock = threading.Lock()

    # --- handshake ------------------------------------------------------------------------------------------
    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        mode = wire.field_str(hello, "mode", "hello", 20)
        if mode not in MODES:
            raise MalformedMessageError(f"hello: mode {mode!r} is not one of {', '.join(MODES)}")
        n = wire.field_int(hello, "n", "hello")
        purpose = wire.field_str(hello, "purpose", "hello")
        basis = wire.field_str(hello, "legal_basis", "hello")
        if purpose != self.purpose:
            raise NotLawfulError(f"the query's purpose {purpose!r} is not the purpose this server declared")
        self.limits.admit(peer, n)
        nchunks = math.ceil(len(self.points) / self.chunk)
        st = _State(peer, mode, n, purpose, basis, ecdh.new_scalar(), self.chunk)
        st.server_chunks = [None] * nchunks
        st.server_ready = [threading.Event() for _ in range(nchunks)]
        with self._lock:
            self.states[session_id] = st
        threading.Thread(target=self._blind_own, args=(st,), daemon=True, name="psi-own").start()
        return {
            "mode": mode,
            "n": len(self.points),
            "chunk": self.chunk,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
        }

    def _blind_own(self, st: _State) -> None:
        order = list(range(len(self.points)))
        random.SystemRandom().shuffle(order)  # the querier sees H(y)^b in an order unrelated to the file
        st.order = order
        try:
            for j in range(len(st.server_chunks)):
                if st.closed:  # the querier went away: stop spending the CPU
                    return
                part = [self.points[i] for i in order[j * st.chunk : (j + 1) * st.chunk]]
                st.server_chunks[j] = ecdh.blind_bytes(st.scalar, b"".join(part), self.pool)
                st.server_ready[j].set()
        except Exception as exc:  # surfaced to the querier as a named error on its next request
            st.server_error = exc
            for ev in st.server_ready:
                ev.set()

    def _state(self, session: wire.Session) -> _State:
        with self._lock:
            st = self.states.get(session.id)
        if st is None:
            raise SessionError("unknown session")
        return st

    # --- messages -------------------------------------------------------------------------------------------
    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        st = self._state(session)
        kind = msg.header.get("type")
        if kind == "blinded":
            return self._blinded(st, msg)
        if kind == "server_chunk":
            j = wire.field_int(msg.header, "index", "server_chunk", 0, len(st.server_chunks) - 1)
            if not st.server_ready[j].wait(_WAIT):
                raise PeerError("the server's own set was not ready in time")
            if st.server_error is not None:
                raise PeerError("the server failed to blind its own set")
            data = st.server_chunks[j] or b""
            st.server_chunks[j] = None  # sent once; frees memory
            if not data:
                raise MalformedMessageError(f"server chunk {j} was already sent")
            return {"index": j, "count": len(data) // ecdh.POINT}, data
        if kind == "double_chunk":
            if st.mode != "cardinality" or st.shuffled is None:
                raise MalformedMessageError(
                    "double_chunk before the last blinded chunk, or not in cardinality mode"
                )
            j = wire.field_int(msg.header, "index", "double_chunk")
            size = st.chunk * ecdh.POINT
            return {"index": j}, st.shuffled[j * size : (j + 1) * size]
        if kind == "finish":
            if st.received != st.n_client:
                raise MalformedMessageError("finish before all of the querier's identifiers were sent")
            st.complete = True
            return {}, b""
        raise MalformedMessageError(f"unknown message type {kind!r}")

    def _blinded(self, st: _State, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        index = wire.field_int(msg.header, "index", "blinded")
        last = msg.header.get("last") is True
        with st.lock:
            if index != st.next_index:
                raise MalformedMessageError(
                    f"blinded chunk {index} arrived out of order (expected {st.next_index})"
                )
            count = len(msg.payload) // ecdh.POINT
            if len(msg.payload) % ecdh.POINT or count > st.chunk:
                raise MalformedMessageError("blinded chunk has a bad size")
            if st.received + count > st.n_client:
                raise MalformedMessageError("the querier sent more identifiers than it declared")
            st.next_index += 1
            st.received += count
        doubled = ecdh.blind_bytes(st.scalar, msg.payload, self.pool)
        if st.mode == "intersection":
            return {"index": index}, doubled
        with st.lock:
            st.doubled.append(doubled)
            if last:
                if st.received != st.n_client:
                    raise MalformedMessageError("last chunk sent before all declared identifiers")
                pts = ecdh.split(b"".join(st.doubled))
                random.SystemRandom().shuffle(pts)
                st.shuffled = b"".join(pts)
                st.doubled = []
        return {"index": index}, b""

    def closed(self, session: wire.Session, complete: bool) -> None:
        with self._lock:
            st = self.states.pop(session.id, None)
        if st is not None:
            st.closed = True
        if st is None or self.on_run is None:
            return
        self.on_run(
            RunRecord(
                role="server",
                mode=st.mode,
                partner=st.peer.owner or st.peer.key_id,
                partner_key_id=st.peer.key_id,
                purpose=st.purpose,
                legal_basis=st.legal_basis,
                own_set_size=len(self.points),
                partner_set_size=st.n_client,
                complete=complete and st.complete,
                seconds=round(time.monotonic() - st.started, 3),
            )
        )


@dataclass
class PsiResult:
    mode: str
    own_set_size: int
    partner_set_size: int
    intersection_size: int
    matched: list[int] | None  # indices into the querier's key list (intersection mode)
    timings: dict[str, float]
    partner: str
    partner_key_id: str


def query(
    url: str,
    keys: Sequence[str],
    *,
    me: SigningKey,
    trust: TrustStore,
    purpose: str,
    legal_basis: str,
    cardinality: bool = False,
    timeout: float = 600.0,
    on_partner: Callable[[PublicKey], None] | None = None,
) -> PsiResult:
    """Run PSI against the server at ``url`` with the querier's distinct canonical ``keys``."""
    t0 = time.perf_counter()
    mode = "cardinality" if cardinality else "intersection"
    points = ecdh.hash_points(keys)
    timings: dict[str, float] = {"hash": time.perf_counter() - t0}
    with Client(url, me, trust, timeout=timeout) as client:
        welcome = client.hello(
            PROTOCOL, {"mode": mode, "n": len(points), "purpose": purpose, "legal_basis": legal_basis}
        )
        if on_partner is not None and client.session is not None:
            on_partner(client.session.peer)  # e.g. the rule check, now that the recipient is known
        timings["handshake"] = time.perf_counter() - t0 - timings["hash"]
        ex = exchange(client, points, welcome, mode)
        client.call("finish", {"status": "complete"})
    timings.update(ex.timings)
    timings["total"] = time.perf_counter() - t0
    peer = client.session.peer if client.session else None
    return PsiResult(
        mode=mode,
        own_set_size=len(points),
        partner_set_size=ex.partner_set_size,
        intersection_size=ex.size,
        matched=ex.matched,
        timings={k: round(v, 3) for k, v in timings.items()},
        partner=(peer.owner or peer.key_id) if peer else "",
        partner_key_id=peer.key_id if peer else "",
    )


@dataclass
class Exchange:
    size: int
    partner_set_size: int
    matched: list[int] | None  # the querier's indices in the intersection (intersection mode)
    positions: list[int] | None  # for each matched index, its place in the server's shuffled order
    timings: dict[str, float]


def exchange(client: Client, points: Sequence[bytes], welcome: dict[str, Any], mode: str) -> Exchange:
    """The querier's side of the protocol after the handshake: both directions at once, then compare."""
    t0 = time.perf_counter()
    scalar = ecdh.new_scalar()
    if welcome.get("mode") != mode:
        raise MalformedMessageError("welcome: the server answered for another mode")
    n_server = wire.field_int(welcome, "n", "welcome")
    chunk = wire.field_int(welcome, "chunk", "welcome", 1, 1 << 22)
    up_chunks = math.ceil(len(points) / chunk) if points else 0
    doubled: list[bytes] = [b""] * up_chunks
    theirs: dict[bytes, int] = {}
    received_theirs = [0]
    stop = threading.Event()

    def up() -> None:
        for i in range(up_chunks):
            if stop.is_set():
                return
            part = b"".join(ecdh.blind(scalar, points[i * chunk : (i + 1) * chunk]))
            reply = client.call("blinded", {"index": i, "last": i == up_chunks - 1}, part)
            if mode == "intersection":
                if len(reply.payload) != len(part):
                    raise PeerError(f"the server answered chunk {i} with the wrong number of values")
                doubled[i] = reply.payload

    def down() -> None:
        for j in range(math.ceil(n_server / chunk)):
            if stop.is_set():
                return
            reply = client.call("server_chunk", {"index": j})
            pts = ecdh.split(reply.payload)
            base = received_theirs[0]
            received_theirs[0] += len(pts)
            theirs.update(zip(ecdh.blind(scalar, pts), range(base, base + len(pts)), strict=True))

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="psi-query") as pool:
        futures = [pool.submit(up), pool.submit(down)]
        try:
            for f in futures:
                f.result()
        except BaseException:
            stop.set()
            raise
    t_ex = time.perf_counter() - t0
    if received_theirs[0] != n_server or len(theirs) != n_server:
        raise PeerError(
            f"the server declared {n_server} identifiers but sent {received_theirs[0]} distinct values"
        )
    matched: list[int] | None = None
    positions: list[int] | None = None
    if mode == "intersection":
        flat = ecdh.split(b"".join(doubled))
        if len(flat) != len(points):
            raise PeerError("the server's answers do not cover every identifier sent")
        matched, positions = [], []
        for i, d in enumerate(flat):
            pos = theirs.get(d)
            if pos is not None:
                matched.append(i)
                positions.append(pos)
        size = len(matched)
    else:
        flat = []
        for j in range(up_chunks):
            flat.extend(ecdh.split(client.call("double_chunk", {"index": j}).payload))
        if len(flat) != len(points):
            raise PeerError("the server's shuffled answers do not cover every identifier sent")
        size = sum(1 for d in flat if d in theirs)
    return Exchange(
        size, n_server, matched, positions, {"exchange": t_ex, "compare": time.perf_counter() - t0 - t_ex}
    )
