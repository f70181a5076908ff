"""FF1 format-preserving encryption (NIST SP 800-38G, section 5.1, Algorithms 7 and 8).

Implemented here on ``cryptography``'s AES because no maintained FF1 package was found on PyPI: ``ff3``
and ``ff3-cryptography`` implement FF3/FF3-1 only, which the SP 800-38G rev. 1 second draft withdraws;
the FF1 candidates are alpha releases or unmaintained. Checked against NIST's published FF1 sample
vectors (tests/deid/test_ff1.py).
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from piguard.deid.errors import DeidError

ROUNDS = 10


class FF1:
    """FF1 over the alphabet's radix. The key is never included in errors or ``repr``."""

    def __init__(self, key: bytes, alphabet: str = "0123456789") -> None:
        if len(key) not in (16, 24, 32):
            raise DeidError("FF1 key must be 16, 24 or 32 bytes (AES-128/192/256)")
        if len(set(alphabet)) != len(alphabet) or len(alphabet) < 2:
            raise DeidError("FF1 alphabet must have at least 2 distinct characters")
        self._ecb = Cipher(algorithms.AES(key), modes.ECB())
        self.alphabet = alphabet
        self.radix = len(alphabet)
        self._index = {c: i for i, c in enumerate(alphabet)}
        # SP 800-38G rev.1: radix ** minlen >= 1,000,000.
        self.minlen = math.ceil(math.log(1_000_000) / math.log(self.radix) - 1e-9)

    def __repr__(self) -> str:
        return f"FF1(radix={self.radix})"

    def _prf(self, data: bytes) -> bytes:
        enc = self._ecb.encryptor()
        y = bytes(16)
        for i in range(0, len(data), 16):
            y = enc.update(bytes(a ^ b for a, b in zip(y, data[i : i + 16], strict=True)))
        return y

    def _num(self, xs: list[int]) -> int:
        v = 0
        for x in xs:
            v = v * self.radix + x
        return v

    def _str(self, v: int, m: int) -> list[int]:
        out = [0] * m
        for i in range(m - 1, -1, -1):
            v, out[i] = divmod(v, self.radix)
        return out

    def _rounds(self, x: list[int], tweak: bytes, decrypt: bool) -> list[int]:
        n, t, radix = len(x), len(tweak), self.radix
        if n < self.minlen:
            raise DeidError(
                f"FF1 input of {n} characters is shorter than the minimum {self.minlen} for radix {radix}"
            )
        u, v = n // 2, n - n // 2
        a, b = x[:u], x[u:]
        bb = math.ceil(math.ceil(v * math.log2(radix)) / 8)
        d = 4 * math.ceil(bb / 4) + 4
        p = (
            bytes([1, 2, 1])
            + radix.to_bytes(3, "big")
            + bytes([10, u % 256])
            + n.to_bytes(4, "big")
            + t.to_bytes(4, "big")
        )
        enc = self._ecb.encryptor()
        pad = bytes((-t - bb - 1) % 16)
        steps = range(ROUNDS - 1, -1, -1) if decrypt else range(ROUNDS)
        for i in steps:
            src = a if decrypt else b
            q = tweak + pad + bytes([i]) + self._num(src).to_bytes(bb, "big")
            r = self._prf(p + q)
            s = r
            for j in range(1, math.ceil(d / 16)):
                s += enc.update(bytes(a_ ^ b_ for a_, b_ in zip(r, j.to_bytes(16, "big"), strict=True)))
            y = int.from_bytes(s[:d], "big")
            m = u if i % 2 == 0 else v
            if decrypt:
                c = (self._num(b) - y) % radix**m
                a, b = self._str(c, m), a
            else:
                c = (self._num(a) + y) % radix**m
                a, b = b, self._str(c, m)
        return a + b

    def _digits(self, s: str) -> list[int]:
        try:
            return [self._index[ch] for ch in s]
        except KeyError:
            raise DeidError("FF1 input has a character outside the alphabet") from None

    def encrypt(self, s: str, tweak: bytes = b"") -> str:
        return "".join(self.alphabet[i] for i in self._rounds(self._digits(s), tweak, decrypt=False))

    def decrypt(self, s: str, tweak: bytes = b"") -> str:
        return "".join(self.alphabet[i] for i in self._rounds(self._digits(s), tweak, decrypt=True))
