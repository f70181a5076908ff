"""HTTP between members: a Starlette app served by uvicorn on one side, httpx on the other.

Two routes: ``POST /joint/v1/hello`` (signed handshake, see ``wire``) and ``POST /joint/v1/msg`` (MAC'd
messages of an open session). A protocol (PSI, consortium count, federated training) plugs in as a
``ServerProtocol``; the transport does authentication, replay checks, body limits, idle expiry and turns
every ``JointError`` into a JSON error naming it (``{"error": "limit_exceeded", "message": ...}``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from piguard.joint import wire
from piguard.joint.errors import (
    ERRORS_BY_CODE,
    JointError,
    MalformedMessageError,
    PeerError,
    SessionError,
)
from piguard.keys import PublicKey, SigningKey, TrustStore

log = logging.getLogger("piguard.joint")
MAX_BODY = 96 * 1024 * 1024
# A session idle this long is dropped and its run logged as incomplete (the peer went away mid-protocol).
IDLE_TIMEOUT = float(os.environ.get("PIGUARD_JOINT_IDLE_TIMEOUT", "600"))
_OCTETS = "application/octet-stream"


class ServerProtocol(Protocol):
    name: str

    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        """Check a hello's parameters (lawfulness, limits); return the welcome's parameters."""
        ...

    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]: ...

    def closed(self, session: wire.Session, complete: bool) -> None:
        """The session ended: ``complete`` is False when the peer went away or it expired."""
        ...


@dataclass
class _Entry:
    session: wire.Session
    done: bool = False


class JointServer:
    """Sessions of one protocol, served over HTTP."""

    def __init__(self, protocol: ServerProtocol, me: SigningKey, trust: TrustStore) -> None:
        self.protocol, self.me, self.trust = protocol, me, trust
        self.nonces = wire.NonceCache()
        self.sessions: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/joint/v1/hello", self._hello, methods=["POST"]),
                Route("/joint/v1/msg", self._msg, methods=["POST"]),
                Route("/joint/v1/health", self._health, methods=["GET"]),
            ]
        )

    # --- HTTP ---------------------------------------------------------------------------------------------
    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            raise MalformedMessageError(f"message larger than {MAX_BODY} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise MalformedMessageError(f"message larger than {MAX_BODY} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _error(exc: JointError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=exc.http_status)

    async def _health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "protocol": self.protocol.name,
                "engine": getattr(self.protocol, "engine", None),
                "key_id": self.me.key_id,
                "version": wire.VERSION,
            }
        )

    async def _hello(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            out = await run_in_threadpool(self._do_hello, body)
        except JointError as exc:
            log.warning("refused a hello: %s", exc.code)
            return self._error(exc)
        return Response(out, media_type=_OCTETS)

    async def _msg(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            out = await run_in_threadpool(self._do_msg, body)
        except JointError as exc:
            return self._error(exc)
        return Response(out, media_type=_OCTETS)

    # --- protocol -----------------------------------------------------------------------------------------
    def _do_hello(self, body: bytes) -> bytes:
        self.reap()
        hello, peer = wire.server_accept(body, self.me, self.trust, self.nonces, self.protocol.name)
        sid = "s" + secrets.token_hex(12)
        params = self.protocol.accept(hello.header, peer, sid)
        welcome, sess = wire.server_welcome(hello, peer, self.me, sid, params)
        with self._lock:
            self.sessions[sid] = _Entry(sess)
        return welcome

    def _do_msg(self, body: bytes) -> bytes:
        peek = wire.unpack(body, 32)
        sid = peek.header.get("session")
        with self._lock:
            entry = self.sessions.get(sid) if isinstance(sid, str) else None
        if entry is None or entry.done:
            raise SessionError("unknown or finished session")
        msg = entry.session.open(body, "message")
        header, payload = self.protocol.handle(entry.session, msg)
        if msg.header.get("type") == "finish":
            with self._lock:
                entry.done = True
                self.sessions.pop(entry.session.id, None)
            self.protocol.closed(entry.session, True)
        return entry.session.seal(
            {"type": "re:" + str(msg.header.get("type")), **header}, payload, reply_to=int(msg.header["seq"])
        )

    def reap(self) -> None:
        """Drop idle sessions (a peer that went away mid-protocol); their runs are logged as incomplete."""
        now = time.monotonic()
        with self._lock:
            stale = [e for e in self.sessions.values() if now - e.session.last_used > IDLE_TIMEOUT]
            for e in stale:
                self.sessions.pop(e.session.id, None)
        for e in stale:
            self.protocol.closed(e.session, False)

    def close_all(self) -> None:
        with self._lock:
            left = list(self.sessions.values())
            self.sessions.clear()
        for e in left:
            self.protocol.closed(e.session, False)

    def serve(self, host: str, port: int, *, ready: Callable[[int], None] | None = None) -> None:
        """Serve until interrupted. ``ready`` is called with the bound port (port 0 picks a free one)."""
        import socket

        import uvicorn

        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listen before saying so: a peer that connects between "listening on" and uvicorn's start then waits
        # in the backlog instead of being refused (seen under load).
        sock.listen(2048)
        bound = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, timeout_keep_alive=30)
        server = uvicorn.Server(config)
        self._uvicorn = server
        reaper = threading.Thread(target=self._reap_loop, args=(server,), daemon=True)
        reaper.start()
        if ready is not None:
            ready(bound)
        try:
            server.run(sockets=[sock])
        finally:
            self.close_all()
            sock.close()

    def stop(self) -> None:
        """Ask a running ``serve`` to return (after the current requests)."""
        if getattr(self, "_uvicorn", None) is not None:
            self._uvicorn.should_exit = True

    def _reap_loop(self, server: Any) -> None:
        while not server.should_exit:
            time.sleep(min(5.0, IDLE_TIMEOUT / 2))
            with contextlib.suppress(Exception):
                self.reap()


class Client:
    """The calling side of one session."""

    def __init__(self, url: str, me: SigningKey, trust: TrustStore, *, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        self.me, self.trust = me, trust
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=15.0), trust_env=False)
        self.session: wire.Session | None = None
        self.session_welcome_raw = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: bytes) -> bytes:
        try:
            r = self.http.post(self.url + path, content=body, headers={"content-type": _OCTETS})
        except httpx.HTTPError as exc:
            raise PeerError(
                f"{self.url}: {type(exc).__name__} (the peer went away or cannot be reached)"
            ) from None
        if r.status_code != 200:
            try:
                err = r.json()
                cls = ERRORS_BY_CODE.get(err.get("error"), PeerError)
                message = str(err.get("message", ""))[:500]
            except (ValueError, AttributeError):
                cls, message = PeerError, f"HTTP {r.status_code}"
            raise cls(f"the peer refused: {message}")
        return r.content

    def hello(self, proto: str, params: dict[str, Any]) -> dict[str, Any]:
        body, eph = wire.client_hello(self.me, proto, params)
        answer = self._post("/joint/v1/hello", body)
        self.session = wire.client_finish(body, eph, answer, self.trust)
        self.session_welcome_raw = answer  # signed by the peer: a consortium query forwards it to members
        return self.session.welcome

    def call(self, type_: str, header: dict[str, Any] | None = None, payload: bytes = b"") -> wire.Message:
        if self.session is None:
            raise SessionError("call before hello")
        data = self.session.seal({"type": type_, **(header or {})}, payload)
        seq = wire.unpack(data, 32).header["seq"]
        return self.session.open(self._post("/joint/v1/msg", data), f"reply to {type_}", expect_reply_to=seq)
