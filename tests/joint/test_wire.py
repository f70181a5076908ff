"""Bad messages sent to a serving member (its own process): each is refused with a named error."""

from __future__ import annotations

import httpx
import pytest

from piguard.joint import AuthenticationError, ProtocolVersionError, ReplayError, ecdh, wire
from piguard.joint.transport import Client
from piguard.keys import load_trust

from .conftest import Members, write_csv

LAWFUL = ["--purpose", "risk_control", "--legal-basis", "consent", "--consent", "separate"]
HELLO = {"mode": "intersection", "n": 1, "purpose": "risk_control", "legal_basis": "consent"}


@pytest.fixture
def server(tmp_path, members: Members, serve):
    ids = write_csv(tmp_path / "s.csv", "phone", [f"138{i:08d}" for i in range(50)])
    return serve(
        "psi",
        "serve",
        "--ids",
        str(ids),
        "--column",
        "phone",
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )


def _post(url: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(url + path, content=body, timeout=30, trust_env=False)


def test_malformed_and_wrong_version_messages(server, members: Members) -> None:
    for body, code in [
        (b"", "malformed_message"),
        (b"GET / HTTP/1.1 garbage", "malformed_message"),
        (b"PGJ\x01\xff\xff\xff\xff{}", "malformed_message"),
        (b"PGJ\x02" + b"\x00" * 8, "wrong_protocol_version"),
    ]:
        r = _post(server.url, "/joint/v1/hello", body)
        assert r.status_code >= 400 and r.json()["error"] == code
    # A well-signed hello that claims another protocol version in its header.
    me = members.keys["bank"]
    header = {"type": "hello", "v": 2, "auth": "sig", "proto": "ecdh-psi-x25519", "from": me.key_id}
    body = wire.pack(header)
    r = _post(server.url, "/joint/v1/hello", body + me.sign(body))
    assert r.json()["error"] == "wrong_protocol_version"
    # Messages for a session that does not exist.
    r = _post(server.url, "/joint/v1/msg", wire.pack({"v": 1, "auth": "mac", "session": "nope"}) + b"\0" * 32)
    assert r.status_code == 404 and r.json()["error"] == "unknown_session"


def test_replayed_hello_and_replayed_or_forged_messages(server, members: Members) -> None:
    trust = load_trust(members.trust)
    body, _eph = wire.client_hello(members.keys["bank"], "ecdh-psi-x25519", HELLO)
    assert _post(server.url, "/joint/v1/hello", body).status_code == 200
    again = _post(server.url, "/joint/v1/hello", body)
    assert again.status_code == 409 and again.json()["error"] == "replayed_message"

    with Client(server.url, members.keys["bank"], trust) as client:
        client.hello("ecdh-psi-x25519", HELLO)
        assert client.session is not None
        point = b"".join(ecdh.blind(ecdh.new_scalar(), ecdh.hash_points(["PHONE_NUMBER:+8613800000001"])))
        sealed = client.session.seal({"type": "blinded", "index": 0, "last": True}, point)
        assert _post(server.url, "/joint/v1/msg", sealed).status_code == 200
        replay = _post(server.url, "/joint/v1/msg", sealed)
        assert replay.status_code == 409 and replay.json()["error"] == "replayed_message"
        # One flipped bit in the payload: the tag no longer verifies.
        forged = bytearray(client.session.seal({"type": "blinded", "index": 1, "last": True}, point))
        forged[-40] ^= 1  # inside the 32-byte point, before the 32-byte tag
        r = _post(server.url, "/joint/v1/msg", bytes(forged))
        assert r.status_code == 401 and r.json()["error"] == "authentication_failed"
        # A small-order point instead of a blinded value is refused, not raised to a power.
        bad = client.session.seal({"type": "blinded", "index": 1, "last": True}, b"\0" * 32)
        r = _post(server.url, "/joint/v1/msg", bad)
        assert r.json()["error"] == "malformed_message"


def test_client_rejects_a_server_it_does_not_trust(server, members: Members, tmp_path) -> None:
    only_bank = tmp_path / "only-bank"
    only_bank.mkdir()
    (only_bank / "bank.pub").write_text((members.trust / "bank.pub").read_text())
    with pytest.raises(AuthenticationError):  # the server refuses, or the client refuses the welcome
        Client(server.url, members.keys["bank"], load_trust(only_bank)).hello("ecdh-psi-x25519", HELLO)
    with pytest.raises(ProtocolVersionError):
        Client(server.url, members.keys["bank"], load_trust(members.trust)).hello("other-protocol", HELLO)


def test_reply_for_another_request_is_refused(members: Members) -> None:
    """Client side: a reply must answer the request's own sequence number."""
    keys = wire.Keys(send=b"a" * 32, recv=b"b" * 32)
    pub = members.keys["provider"].public
    server = wire.Session("s1", pub, wire.Keys(send=b"b" * 32, recv=b"a" * 32), False, {}, {})
    client = wire.Session("s1", pub, keys, True, {}, {})
    first = wire.unpack(client.seal({"type": "x"}), 32)
    reply_to_first = server.seal({"type": "re:x"}, reply_to=first.header["seq"])
    second = wire.unpack(client.seal({"type": "x"}), 32)
    with pytest.raises(ReplayError):
        client.open(reply_to_first, "reply", expect_reply_to=second.header["seq"])
    assert client.open(reply_to_first, "reply", expect_reply_to=first.header["seq"])
