"""Commutative blinding on Curve25519 for ECDH-PSI, through libsodium (PyNaCl): never curve code of our own.

An identifier is hashed (BLAKE2b, domain-separated) to a Curve25519 u-coordinate, then raised to a secret
scalar with X25519 (``crypto_scalarmult``). X25519 with clamped scalars commutes, ``X(a, X(b, P)) = X(b, X(a,
P))``, which is what ECDH-PSI needs (the same construction as SecretFlow's ``CURVE_25519`` ECDH-PSI). A
hash that lands on the twist is still safe: clamping clears the cofactor and the twist of Curve25519 is
secure (its order is 4 times a large prime). Each session draws fresh scalars.

libsodium's call releases the GIL (cffi), so chunks are blinded on a thread pool and both cores work.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import nacl.bindings as sodium
import nacl.exceptions

from piguard.joint.errors import MalformedMessageError

POINT = 32
_PERSON = b"piguard-psi-v1"


def new_scalar() -> bytes:
    return os.urandom(32)


def hash_points(keys: Iterable[str]) -> list[bytes]:
    """Identifiers (canonical keys) to curve points; the hash never leaves the process unblinded."""
    b2 = hashlib.blake2b
    return [b2(k.encode("utf-8"), digest_size=32, person=_PERSON).digest() for k in keys]


def blind(scalar: bytes, points: Sequence[bytes]) -> list[bytes]:
    """Raise each point to ``scalar``; a peer's unusable point (small order) is a malformed message."""
    mult = sodium.crypto_scalarmult
    try:
        return [mult(scalar, p) for p in points]
    except (nacl.exceptions.RuntimeError, nacl.exceptions.TypeError, nacl.exceptions.ValueError):
        raise MalformedMessageError("a blinded value is not a usable curve point") from None


def blind_bytes(scalar: bytes, data: bytes, pool: ThreadPoolExecutor | None = None, parts: int = 2) -> bytes:
    """Blind a concatenation of 32-byte points; split across ``pool`` so both cores work."""
    if len(data) % POINT:
        raise MalformedMessageError("blinded payload is not a whole number of 32-byte points")
    pts = [data[i : i + POINT] for i in range(0, len(data), POINT)]
    if pool is None or len(pts) < 2048:
        return b"".join(blind(scalar, pts))
    step = -(-len(pts) // parts)
    futures = [pool.submit(blind, scalar, pts[i : i + step]) for i in range(0, len(pts), step)]
    return b"".join(b"".join(f.result()) for f in futures)


def split(data: bytes) -> list[bytes]:
    if len(data) % POINT:
        raise MalformedMessageError("payload is not a whole number of 32-byte points")
    return [data[i : i + POINT] for i in range(0, len(data), POINT)]
