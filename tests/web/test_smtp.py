"""One-time codes by e-mail through a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from rights_env import EMAIL, PHONE, Env, free_port
from sqlalchemy import func, select

from piguard.rights import SmtpDelivery
from piguard.rights import tables as T
from piguard.web import create_app


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd calls it so
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_code_arrives_by_mail_and_verifies(env: Env, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    env.service.delivery = SmtpDelivery(f"smtp://127.0.0.1:{port}?from=privacy@controller.example")
    client = TestClient(create_app(env.service), base_url="http://127.0.0.1")
    r = client.post(
        "/api/v1/requests",
        json={"type": "access", "identifier": {"kind": "email", "value": EMAIL}, "lang": "en"},
    )
    assert r.status_code == 202
    rid = r.json()["id"]
    ((rcpts, msg),) = inbox.messages
    assert rcpts == [EMAIL] and msg["From"] == "privacy@controller.example"
    body = msg.get_content()
    assert rid in body and "expires in 10 minutes" in body
    code = re.search(r"\b(\d{6})\b", body).group(1)
    v = client.post(f"/api/v1/requests/{rid}/verify", json={"code": code})
    assert v.status_code == 200 and v.json()["status"] == "verified"

    # SMTP cannot reach a phone: a clear answer, and no request left behind without a code sent.
    with env.ledger.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(T.requests)).scalar_one()
    r = client.post(
        "/api/v1/requests", json={"type": "access", "identifier": {"kind": "phone", "value": PHONE}}
    )
    assert r.status_code == 502 and "e-mail only" in r.json()["error"] and PHONE not in r.text
    with env.ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(T.requests)).scalar_one() == before


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_mail_server_down_is_a_clear_error(env: Env) -> None:
    env.service.delivery = SmtpDelivery(f"smtp://127.0.0.1:{free_port()}", timeout=3)
    client = TestClient(create_app(env.service), base_url="http://127.0.0.1")
    r = client.post(
        "/api/v1/requests", json={"type": "access", "identifier": {"kind": "email", "value": EMAIL}}
    )
    assert r.status_code == 502 and r.json() == {
        "error": "the code could not be sent (ConnectionRefusedError)"
    }
