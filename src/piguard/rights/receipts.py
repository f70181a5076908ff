"""Signed receipts: what a deletion or correction did in each store, signed with the controller's Ed25519
key (``piguard.keys``), so the person, an auditor or a regulator can check it without trusting the
database it came from.

The signature covers the receipt's canonical JSON (sorted keys, no spaces, UTF-8) without the
``signature`` field; ``verify_receipt`` recomputes it."""

from __future__ import annotations

import base64
import json
from typing import Any

from piguard.keys import PublicKey, SigningKey

RECEIPT_VERSION = "piguard.rights.receipt/1"


class ReceiptError(ValueError):
    """A receipt that is malformed or whose signature does not verify."""


def canonical_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_receipt(body: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    out = {"version": RECEIPT_VERSION, **body, "key_id": key.key_id}
    out.pop("signature", None)
    out["signature"] = base64.b64encode(key.sign(canonical_bytes(out))).decode("ascii")
    return out


def verify_receipt(receipt: dict[str, Any], public: PublicKey) -> None:
    """Raise ``ReceiptError`` unless ``receipt`` was signed by ``public`` and is unchanged since."""
    if not isinstance(receipt, dict) or receipt.get("version") != RECEIPT_VERSION:
        raise ReceiptError(f"not a piguard rights receipt (version {RECEIPT_VERSION!r} expected)")
    if receipt.get("key_id") != public.key_id:
        raise ReceiptError(f"receipt was signed by {receipt.get('key_id')!r}, not by {public.key_id}")
    body = {k: v for k, v in receipt.items() if k != "signature"}
    try:
        sig = base64.b64decode(str(receipt.get("signature", "")), validate=True)
    except ValueError:
        raise ReceiptError("receipt signature is not base64") from None
    if not public.verify(sig, canonical_bytes(body)):
        raise ReceiptError("receipt signature does not verify: it was altered or signed by another key")
