"""Proving a person controls a contact: identifiers, one-time codes, sealing, and code delivery.

Every secret here is derived from the ledger's pseudonym key with HKDF (one key, several purposes, none
reusable for another): code digests are HMACs (a 6-digit code has only a million values, so a plain hash
would be reversed in a millisecond by anyone who read the table), the raw identifier a store needs is
sealed with AES-GCM bound to its request id, and client addresses are counted by HMAC, never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stdnum.cn import ric

from piguard._fs import atomic_write_text
from piguard.ledger import pseudonym

CODE_DIGITS = 6
CODE_TTL_SECONDS = 600  # ten minutes
MAX_CODE_ATTEMPTS = 5


class IdentityError(ValueError):
    """An identifier or contact that cannot be used; the message names the field, never the value."""


class DeliveryError(RuntimeError):
    """A code could not be sent; the message never holds the contact or the code."""


def canonical(kind: str, value: object) -> str:
    """The one spelling of an identifier the pseudonym is taken of: a mainland mobile as its 11 digits
    (others in E.164), an e-mail address lower-cased, a resident ID in upper case after its check digit
    is confirmed."""
    if not isinstance(value, str) or not value.strip() or len(value) > 254:
        raise IdentityError(f"identifier.value for {kind} must be 1 to 254 characters")
    v = value.strip()
    if kind == "phone":
        try:
            num = phonenumbers.parse(v, "CN")
        except phonenumbers.NumberParseException:
            raise IdentityError("identifier.value is not a phone number") from None
        if not phonenumbers.is_valid_number(num):
            raise IdentityError("identifier.value is not a valid phone number")
        if num.country_code == 86:
            return str(num.national_number)
        return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    if kind == "email":
        local, at, domain = v.rpartition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in v) or "\n" in v:
            raise IdentityError("identifier.value is not an e-mail address")
        return f"{local}@{domain.lower()}".lower()
    if kind == "resident_id":
        try:
            return ric.validate(v).upper()
        except Exception:
            raise IdentityError("identifier.value is not a valid resident ID number") from None
    raise IdentityError(f"identifier.kind must be phone, email or resident_id, not {kind[:20]!r}")


@dataclass(frozen=True)
class Secrets:
    """Purpose-bound keys derived from the ledger's pseudonym key."""

    ledger_key: bytes

    def _derive(self, purpose: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 32, salt=b"piguard.rights", info=purpose).derive(self.ledger_key)

    def pseudonym(self, value: str) -> str:
        return pseudonym(value, self.ledger_key)

    def code_digest(self, request_id: str, code: str) -> str:
        return hmac.new(self._derive(b"code"), f"{request_id}|{code}".encode(), hashlib.sha256).hexdigest()

    def keyed(self, value: str) -> str:
        """A counter key for a client address or the like: linkable within the service, not reversible."""
        return hmac.new(self._derive(b"throttle"), value.encode("utf-8"), hashlib.sha256).hexdigest()

    def web_secret(self) -> bytes:
        return self._derive(b"web")

    def seal(self, request_id: str, identifiers: Mapping[str, str]) -> bytes:
        nonce = os.urandom(12)
        plain = json.dumps(dict(identifiers), sort_keys=True).encode("utf-8")
        return nonce + AESGCM(self._derive(b"seal")).encrypt(nonce, plain, request_id.encode())

    def unseal(self, request_id: str, blob: bytes) -> dict[str, str]:
        try:
            plain = AESGCM(self._derive(b"seal")).decrypt(blob[:12], blob[12:], request_id.encode())
        except (InvalidTag, ValueError):
            raise IdentityError(
                f"request {request_id}: sealed identifier does not open (key changed?)"
            ) from None
        return json.loads(plain)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # Tokens carry 256 random bits: a plain SHA-256 is enough to make the stored digest useless to a reader.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---- delivery ----------------------------------------------------------------------------------------------
MESSAGES = {
    "zh": "您的验证码是 {code}，10 分钟内有效。申请编号 {rid}。如非本人操作，请忽略本消息。",
    "en": "Your verification code is {code}; it expires in 10 minutes. Request {rid}. "
    "If you did not ask for it, ignore this message.",
}


class Delivery(Protocol):
    def send(self, request_id: str, kind: str, contact: str, code: str, lang: str = "zh") -> None: ...


class OutboxDelivery:
    """Development and tests: each code goes to ``DIR/<request id>.txt`` (mode 0600), no contact in it."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise DeliveryError(f"outbox directory {self.directory} does not exist")

    def send(self, request_id: str, kind: str, contact: str, code: str, lang: str = "zh") -> None:
        text = MESSAGES.get(lang, MESSAGES["zh"]).format(code=code, rid=request_id)
        atomic_write_text(self.directory / f"{request_id}.txt", text + "\n", mode=0o600)


class SmtpDelivery:
    """``smtp://[user:password@]host[:port][?from=addr&starttls=1]`` or ``smtps://...`` (implicit TLS).
    E-mail only: a phone number needs an SMS gateway (implement ``Delivery``)."""

    def __init__(self, url: str, timeout: float = 20.0) -> None:
        u = urlparse(url)
        if u.scheme not in ("smtp", "smtps") or not u.hostname:
            raise DeliveryError("--smtp must be smtp://host[:port] or smtps://host[:port]")
        q = parse_qs(u.query)
        self.host, self.ssl = u.hostname, u.scheme == "smtps"
        self.port = u.port or (465 if self.ssl else 25)
        self.user = unquote(u.username) if u.username else None
        self.password = unquote(u.password) if u.password else None
        self.sender = q.get("from", [f"no-reply@{self.host}"])[0]
        self.starttls = q.get("starttls", ["0"])[0] in ("1", "true", "yes")
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the password
        return f"SmtpDelivery({'smtps' if self.ssl else 'smtp'}://{self.host}:{self.port})"

    def send(self, request_id: str, kind: str, contact: str, code: str, lang: str = "zh") -> None:
        if kind != "email":
            raise DeliveryError("this service sends codes by e-mail only; give an e-mail address as contact")
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = contact
        msg["Subject"] = "验证码 / Verification code" if lang == "zh" else "Verification code"
        msg.set_content(MESSAGES.get(lang, MESSAGES["zh"]).format(code=code, rid=request_id))
        try:
            cls = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
            with cls(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls and not self.ssl:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            # The server's reply may quote the recipient: name the failure's kind only.
            raise DeliveryError(f"the code could not be sent ({type(exc).__name__})") from None
