"""Consortium signal: "how many members hold an open loan for this applicant?", for one applicant or a batch,
across N members, with a non-colluding aggregator. The querier learns one count per applicant; no party
learns which members hold whom.

Parties: querier Q (applicants x_1..x_n, fresh scalar a), members M_1..M_N (open-loan sets Y_j, fresh
scalars b_j), aggregator A (a fresh X25519 box key pair per session, a roster of the members' keys).

1. Q opens a session with A. A's signed welcome carries its session box key and roster.
2. Q opens a session with each member, forwarding A's signed welcome (the member checks A's signature
   against its own trust store, so Q cannot substitute a box key of its own), and sends H(x_i)^a in order.
3. Member j returns to Q: its set blinded and shuffled, S_j = {H(y)^b_j}, and D_j = [H(x_i)^(a b_j)] in
   applicant order *sealed to A's box key* (libsodium sealed box) and signed by the member with A's session
   id, so only A can open it and A knows it is genuine and fresh.
4. Q raises S_j to a (T_j = {H(y)^(a b_j)}) and hands A the sealed D_j with T_j. Q cannot compare D_j with
   T_j itself: it never sees D_j.
5. A opens each D_j, checks that every roster member answered exactly once, counts per applicant i how many
   j have D_j[i] in T_j, and returns only the counts.

Trust assumptions (semi-honest parties; A does not collude with Q): Q learns the counts and each member's
set size; a member learns n; A learns n, the set sizes and, per applicant *index*, which members hold it,
but not who the applicant is (it never sees a or an identifier). A colluding with Q would reveal which
members hold each applicant. A querier that sends A altered T_j can only lower its own counts; a subset of
members is refused (A requires its whole roster).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.public
from nacl.exceptions import CryptoError

from piguard.joint import ecdh, wire
from piguard.joint.errors import AuthenticationError, MalformedMessageError, NotLawfulError, PeerError
from piguard.joint.limits import Limit, Limits
from piguard.joint.psi import RunRecord
from piguard.joint.transport import Client
from piguard.keys import PublicKey, SigningKey, TrustStore

MEMBER = "consortium-count-member"
AGGREGATOR = "consortium-count-aggregator"
MAX_APPLICANTS = 1_000_000


def _sealed_context(a_session: str, member: str, n: int) -> bytes:
    return json.dumps({"aggregator_session": a_session, "member": member, "n": n}, sort_keys=True).encode()


class MemberServer:
    """A consortium member: answers count queries over its own set (e.g. applicants with an open loan)."""

    name = MEMBER

    def __init__(
        self,
        keys: Sequence[str],
        *,
        me: SigningKey,
        trust: TrustStore,
        purpose: str,
        legal_basis: str,
        limits: Limits | None = None,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.points = ecdh.hash_points(keys)
        self.me, self.trust = me, trust
        self.purpose, self.legal_basis = purpose, legal_basis
        self.limits = limits or Limits(Limit(max_ids=MAX_APPLICANTS))
        self.on_run = on_run
        self.states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        n = wire.field_int(hello, "n", "hello", 1, MAX_APPLICANTS)
        if wire.field_str(hello, "purpose", "hello") != self.purpose:
            raise NotLawfulError("the query's purpose is not the purpose this member declared")
        welcome = wire.unb64(hello.get("aggregator_welcome"), "hello aggregator_welcome")
        msg = wire.unpack(welcome, 64)
        if msg.header.get("type") != "welcome" or msg.header.get("proto") != AGGREGATOR:
            raise MalformedMessageError("hello: aggregator_welcome is not an aggregator's welcome")
        agg = wire.verify_signed(msg, self.trust, "aggregator welcome")
        if abs(time.time() - wire.field_int(msg.header, "time", "aggregator welcome")) > wire.CLOCK_WINDOW:
            raise MalformedMessageError("the aggregator's welcome is stale")
        wire.field_str(msg.header, "session", "aggregator welcome")
        box = wire.unb64(msg.header.get("box_key"), "aggregator box_key")
        if len(box) != 32:
            raise MalformedMessageError("aggregator box key must be 32 bytes")
        self.limits.admit(peer, n)
        with self._lock:
            self.states[session_id] = {
                "peer": peer,
                "n": n,
                "box": box,
                "agg": agg,
                "a_session": str(msg.header.get("session", "")),
                "started": time.monotonic(),
                "complete": False,
            }
        return {"n": len(self.points), "purpose": self.purpose, "legal_basis": self.legal_basis}

    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            st = self.states.get(session.id)
        if st is None:
            raise PeerError("unknown session")
        kind = msg.header.get("type")
        if kind == "finish":
            st["complete"] = True
            return {}, b""
        if kind != "applicants" or st.get("answered"):
            raise MalformedMessageError(f"unexpected message {kind!r}")
        pts = ecdh.split(msg.payload)
        if len(pts) != st["n"]:
            raise MalformedMessageError(f"expected {st['n']} blinded applicants, got {len(pts)}")
        st["answered"] = True
        b = ecdh.new_scalar()
        doubled = b"".join(ecdh.blind(b, pts))
        own = ecdh.blind(b, self.points)
        random.SystemRandom().shuffle(own)
        context = _sealed_context(st["a_session"], self.me.key_id, st["n"])
        sealed = nacl.public.SealedBox(nacl.public.PublicKey(st["box"])).encrypt(context + b"\n" + doubled)
        sig = self.me.sign(st["a_session"].encode() + hashlib.sha256(sealed).digest())
        return {"n_set": len(own), "sealed_len": len(sealed), "sig": wire.b64(sig)}, sealed + b"".join(own)

    def closed(self, session: wire.Session, complete: bool) -> None:
        with self._lock:
            st = self.states.pop(session.id, None)
        if st is None or self.on_run is None:
            return
        peer = st["peer"]
        self.on_run(
            RunRecord(
                role="member",
                mode="count",
                partner=peer.owner or peer.key_id,
                partner_key_id=peer.key_id,
                purpose=self.purpose,
                legal_basis=self.legal_basis,
                own_set_size=len(self.points),
                partner_set_size=st["n"],
                complete=complete and st["complete"],
                seconds=round(time.monotonic() - st["started"], 3),
            )
        )


@dataclass
class _AggState:
    peer: PublicKey
    n: int
    box: nacl.public.PrivateKey
    counts: list[int]
    seen: set[str] = field(default_factory=set)
    set_sizes: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    complete: bool = False


class AggregatorServer:
    """The non-colluding aggregator: opens the members' sealed answers, returns counts only."""

    name = AGGREGATOR

    def __init__(
        self,
        roster: TrustStore,
        *,
        purpose: str,
        legal_basis: str,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        if len(roster) < 2:
            raise NotLawfulError("a consortium count needs at least two members in the roster")
        self.roster = roster
        self.purpose, self.legal_basis = purpose, legal_basis
        self.on_run = on_run
        self.states: dict[str, _AggState] = {}
        self._lock = threading.Lock()

    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        n = wire.field_int(hello, "n", "hello", 1, MAX_APPLICANTS)
        if wire.field_str(hello, "purpose", "hello") != self.purpose:
            raise NotLawfulError("the query's purpose is not the purpose this aggregator declared")
        box = nacl.public.PrivateKey.generate()
        with self._lock:
            self.states[session_id] = _AggState(peer, n, box, [0] * n)
        return {
            "proto": AGGREGATOR,
            "box_key": wire.b64(bytes(box.public_key)),
            "time": int(time.time()),
            "roster": sorted(k.key_id for k in self.roster),
            "purpose": self.purpose,
        }

    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            st = self.states.get(session.id)
        if st is None:
            raise PeerError("unknown session")
        kind = msg.header.get("type")
        if kind == "member":
            member_id = wire.field_str(msg.header, "member", "member")
            key = self.roster.get(member_id)
            if key is None:
                raise AuthenticationError(f"member {member_id} is not in the consortium roster")
            if member_id in st.seen:
                raise MalformedMessageError(f"member {member_id} was already counted in this query")
            sealed_len = wire.field_int(msg.header, "sealed_len", "member", 1, len(msg.payload))
            sealed, t_j = msg.payload[:sealed_len], msg.payload[sealed_len:]
            sig = wire.unb64(msg.header.get("sig"), "member sig")
            if not key.verify(sig, session.id.encode() + hashlib.sha256(sealed).digest()):
                raise AuthenticationError(
                    f"the answer of member {member_id} is not signed by it for this query"
                )
            try:
                opened = nacl.public.SealedBox(st.box).decrypt(sealed)
            except CryptoError:
                raise MalformedMessageError(
                    f"the sealed answer of member {member_id} does not open"
                ) from None
            context, _, doubled = opened.partition(b"\n")
            if context != _sealed_context(session.id, member_id, st.n):
                raise MalformedMessageError(f"the sealed answer of member {member_id} is for another query")
            d = ecdh.split(doubled)
            if len(d) != st.n:
                raise MalformedMessageError(
                    f"member {member_id} answered for {len(d)} applicants, not {st.n}"
                )
            theirs = set(ecdh.split(t_j))
            for i, v in enumerate(d):
                if v in theirs:
                    st.counts[i] += 1
            st.seen.add(member_id)
            st.set_sizes.append(len(theirs))
            return {"members_counted": len(st.seen)}, b""
        if kind == "finish":
            missing = sorted(k.owner or k.key_id for k in self.roster if k.key_id not in st.seen)
            if missing:
                raise MalformedMessageError(f"members missing from this query: {', '.join(missing)}")
            st.complete = True
            return {"members": len(st.seen), "n": st.n}, b"".join(c.to_bytes(2, "big") for c in st.counts)
        raise MalformedMessageError(f"unknown message type {kind!r}")

    def closed(self, session: wire.Session, complete: bool) -> None:
        with self._lock:
            st = self.states.pop(session.id, None)
        if st is None or self.on_run is None:
            return
        self.on_run(
            RunRecord(
                role="aggregator",
                mode="count",
                partner=st.peer.owner or st.peer.key_id,
                partner_key_id=st.peer.key_id,
                purpose=self.purpose,
                legal_basis=self.legal_basis,
                own_set_size=len(st.seen),
                partner_set_size=st.n,
                complete=complete and st.complete,
                seconds=round(time.monotonic() - st.started, 3),
            )
        )


@dataclass
class CountResult:
    counts: list[int]
    members: int
    member_set_sizes: list[int]
    timings: dict[str, float]


def query(
    aggregator: str,
    members: Sequence[str],
    keys: Sequence[str],
    *,
    me: SigningKey,
    trust: TrustStore,
    purpose: str,
    legal_basis: str,
    timeout: float = 600.0,
) -> CountResult:
    """Counts per applicant (``keys``, canonical, in order) of the members holding each."""
    t0 = time.perf_counter()
    if not keys:
        raise MalformedMessageError("no valid applicant identifiers to count")
    params = {"n": len(keys), "purpose": purpose, "legal_basis": legal_basis}
    a = ecdh.new_scalar()
    blinded = b"".join(ecdh.blind(a, ecdh.hash_points(keys)))
    sizes: list[int] = []
    with Client(aggregator, me, trust, timeout=timeout) as agg:
        agg.hello(AGGREGATOR, params)
        welcome_raw = agg.session_welcome_raw
        for url in members:
            with Client(url, me, trust, timeout=timeout) as m:
                m.hello(MEMBER, {**params, "aggregator_welcome": wire.b64(welcome_raw)})
                reply = m.call("applicants", {}, blinded)
                sealed_len = wire.field_int(reply.header, "sealed_len", "member reply", 1, len(reply.payload))
                n_set = wire.field_int(reply.header, "n_set", "member reply")
                own = ecdh.split(reply.payload[sealed_len:])
                if len(own) != n_set:
                    raise PeerError(f"member {url} declared {n_set} identifiers but sent {len(own)}")
                t_j = b"".join(ecdh.blind(a, own))
                member_id = m.session.peer.key_id if m.session else ""
                head = {"member": member_id, "sealed_len": sealed_len, "sig": reply.header.get("sig")}
                agg.call("member", head, reply.payload[:sealed_len] + t_j)
                m.call("finish", {"status": "complete"})
                sizes.append(n_set)
        done = agg.call("finish", {"status": "complete"})
    if len(done.payload) != 2 * len(keys):
        raise PeerError("the aggregator's counts do not cover every applicant")
    counts = [int.from_bytes(done.payload[i : i + 2], "big") for i in range(0, len(done.payload), 2)]
    return CountResult(counts, len(members), sizes, {"total": round(time.perf_counter() - t0, 3)})
