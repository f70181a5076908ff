"""PSI through SecretFlow's engine (``spu.psi``: RR22, KKRT, or ECDH on Curve25519), for large sets.

piguard keeps the lawful front: the same signed handshake as every joint protocol (member keys, purpose,
legal basis, per-partner limits, replay checks) runs over HTTP first, and carries a fresh TLS certificate
of each party. Then each side starts a SecretFlow PSI worker (``_spu_worker.py``) and the two workers speak
brpc over **mutual TLS pinned to those certificates**: the link only accepts the peer whose certificate
the authenticated handshake announced. The querier (receiver) learns the intersection; the server learns
|X| and nothing else (``broadcast_result`` off). Only intersection mode: RR22 reveals the matching
elements to the receiver by design; cardinality runs on piguard's own ECDH engine (``psi``).

``spu`` pins numpy<2 and protobuf versions that clash with piguard's, so it usually lives in its own venv:
``--spu-python PATH`` or ``$PIGUARD_SPU_PYTHON`` names that interpreter (default: this one, if it has spu).
"""

from __future__ import annotations

import base64
import csv
import datetime
import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from piguard.joint import wire
from piguard.joint.errors import InputError, MalformedMessageError, NotLawfulError, PeerError
from piguard.joint.limits import Limit, Limits
from piguard.joint.psi import PsiResult, RunRecord
from piguard.joint.transport import Client
from piguard.keys import PublicKey, SigningKey, TrustStore

PROTOCOL = "spu-psi"
ENGINES = {"rr22": "PROTOCOL_RR22", "kkrt": "PROTOCOL_KKRT", "spu-ecdh": "PROTOCOL_ECDH"}
WORKER = Path(__file__).with_name("_spu_worker.py")
PYTHON_ENV = "PIGUARD_SPU_PYTHON"


def spu_python(explicit: str | None = None) -> str | None:
    """The interpreter that has ``spu``: the one given, ``$PIGUARD_SPU_PYTHON``, or this one if it has it."""
    chosen = explicit or os.environ.get(PYTHON_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise InputError(f"SecretFlow interpreter {chosen} does not exist")
        return chosen
    return sys.executable if importlib.util.find_spec("spu") is not None else None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Workdir:
    """A private directory (0700) for one party's CSVs, certificate and the worker's temp files."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="piguard-spu-"))
        os.chmod(self.path, 0o700)
        key = ec.generate_private_key(ec.SECP256R1())  # brpc's OpenSSL takes P-256 everywhere
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "piguard joint session")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=12))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.cert = self.path / "me.crt"
        self.key = self.path / "me.key"
        self.cert.write_bytes(self.cert_pem)
        fd = os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self.peer_cert = self.path / "peer.crt"
        self.input = self.path / "input.csv"
        self.output = self.path / "output.csv"

    def set_peer(self, pem: bytes) -> None:
        try:
            x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise MalformedMessageError("the peer's session certificate does not parse") from None
        self.peer_cert.write_bytes(pem)

    def write_keys(self, keys: Sequence[str]) -> None:
        with self.input.open("w", encoding="utf-8") as fh:
            fh.write("key\n")
            for k in keys:
                fh.write(k + "\n")

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class Worker:
    """A running SecretFlow PSI party. Its log stays in the work directory and is never echoed."""

    def __init__(
        self,
        python: str,
        work: _Workdir,
        rank: int,
        parties: list[str],
        protocol: str,
        session: str,
        timeout_s: float = 900.0,
    ) -> None:
        cfg = {
            "rank": rank,
            "parties": parties,
            "protocol": protocol,
            "session": session,
            "input": str(work.input),
            "output": str(work.output),
            "cert": str(work.cert),
            "key": str(work.key),
            "peer_cert": str(work.peer_cert),
            "recv_timeout_ms": int(timeout_s * 1000),
            "connect_retry_times": 120,
            "report": str(work.path / "report.json"),
        }
        env = {**os.environ, "TMPDIR": str(work.path)}
        self.log = (work.path / "worker.log").open("wb")
        # SecretFlow logs to stdout and stderr: both go to the log file, the report to its own file.
        self.report = work.path / "report.json"
        self.proc = subprocess.Popen(
            [python, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=self.log,
            cwd=work.path,
            env=env,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cfg).encode())
        self.proc.stdin.close()
        self.timeout_s = timeout_s

    def wait(self) -> dict[str, Any]:
        try:
            self.proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise PeerError("the SecretFlow PSI worker did not finish in time") from None
        finally:
            self.log.close()
        try:  # the report is written only once psi_execute has returned, i.e. the run is complete
            return json.loads(self.report.read_text("utf-8"))
        except (ValueError, OSError):
            raise PeerError(
                f"the SecretFlow PSI worker failed (exit {self.proc.returncode}); no result"
            ) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class SpuPsiServer:
    """The serving party over SecretFlow's PSI (the sender)."""

    name = PROTOCOL

    def __init__(
        self,
        keys: Sequence[str],
        *,
        purpose: str,
        legal_basis: str,
        limits: Limits | None = None,
        on_run: Callable[[RunRecord], None] | None = None,
        python: str | None = None,
        link_host: str = "127.0.0.1",
        engine: str = "rr22",
    ) -> None:
        if not purpose or not legal_basis:
            raise NotLawfulError("a PSI server needs a declared purpose and legal basis")
        py = spu_python(python)
        if py is None:
            raise InputError(f"SecretFlow's spu is not installed here: set ${PYTHON_ENV} or --spu-python")
        if engine not in ENGINES:
            raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
        self.python, self.keys, self.engine = py, list(keys), engine
        self.purpose, self.legal_basis = purpose, legal_basis
        self.limits = limits or Limits(Limit())
        self.on_run, self.link_host = on_run, link_host
        self.states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def accept(self, hello: dict[str, Any], peer: PublicKey, session_id: str) -> dict[str, Any]:
        if hello.get("mode") != "intersection":
            raise MalformedMessageError("the SecretFlow engine runs intersection mode only")
        protocol = wire.field_str(hello, "engine", "hello", 20)
        if protocol != self.engine:
            raise MalformedMessageError(f"hello: this server runs {self.engine}, not {protocol!r}")
        n = wire.field_int(hello, "n", "hello")
        if wire.field_str(hello, "purpose", "hello") != self.purpose:
            raise NotLawfulError("the query's purpose is not the purpose this server declared")
        link = wire.field_str(hello, "link", "hello", 100)
        cert = wire.unb64(hello.get("cert"), "hello cert")
        self.limits.admit(peer, n)
        work = _Workdir()
        try:
            work.set_peer(cert)
            work.write_keys(self.keys)
            port = _free_port(self.link_host)
            mine = f"{self.link_host}:{port}"
            worker = Worker(self.python, work, 1, [link, mine], ENGINES[protocol], session_id)
        except BaseException:
            work.cleanup()
            raise
        with self._lock:
            self.states[session_id] = {
                "peer": peer,
                "n": n,
                "work": work,
                "worker": worker,
                "engine": protocol,
                "started": time.monotonic(),
                "complete": False,
            }
        return {
            "mode": "intersection",
            "n": len(self.keys),
            "link": mine,
            "engine": protocol,
            "cert": base64.b64encode(work.cert_pem).decode(),
        }

    def handle(self, session: wire.Session, msg: wire.Message) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            st = self.states.get(session.id)
        if st is None or msg.header.get("type") != "finish":
            raise MalformedMessageError("unexpected message")
        report = st["worker"].wait()  # PeerError if the worker failed: the querier is told, no result
        st["complete"] = msg.header.get("status") == "complete"
        return {"status": "complete", "server_count": report.get("original_count")}, b""

    def closed(self, session: wire.Session, complete: bool) -> None:
        with self._lock:
            st = self.states.pop(session.id, None)
        if st is None:
            return
        st["worker"].kill()
        st["work"].cleanup()
        if self.on_run is not None:
            peer = st["peer"]
            self.on_run(
                RunRecord(
                    role="server",
                    mode=f"intersection:{st['engine']}",
                    partner=peer.owner or peer.key_id,
                    partner_key_id=peer.key_id,
                    purpose=self.purpose,
                    legal_basis=self.legal_basis,
                    own_set_size=len(self.keys),
                    partner_set_size=st["n"],
                    complete=complete and st["complete"],
                    seconds=round(time.monotonic() - st["started"], 3),
                )
            )


def query(
    url: str,
    keys: Sequence[str],
    *,
    me: SigningKey,
    trust: TrustStore,
    purpose: str,
    legal_basis: str,
    engine: str = "rr22",
    python: str | None = None,
    link_host: str = "127.0.0.1",
    timeout: float = 900.0,
    on_partner: Callable[[PublicKey], None] | None = None,
) -> PsiResult:
    """The querier (receiver) over SecretFlow's PSI; returns the indices of ``keys`` in the intersection."""
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    py = spu_python(python)
    if py is None:
        raise InputError(f"SecretFlow's spu is not installed here: set ${PYTHON_ENV} or --spu-python")
    t0 = time.perf_counter()
    work = _Workdir()
    worker: Worker | None = None
    try:
        work.write_keys(keys)
        mine = f"{link_host}:{_free_port(link_host)}"
        timings = {"write": time.perf_counter() - t0}
        with Client(url, me, trust, timeout=timeout) as client:
            welcome = client.hello(
                PROTOCOL,
                {
                    "mode": "intersection",
                    "n": len(keys),
                    "purpose": purpose,
                    "legal_basis": legal_basis,
                    "engine": engine,
                    "link": mine,
                    "cert": base64.b64encode(work.cert_pem).decode(),
                },
            )
            if on_partner is not None and client.session is not None:
                on_partner(client.session.peer)  # e.g. the rule check, now that the recipient is known
            n_server = wire.field_int(welcome, "n", "welcome")
            work.set_peer(wire.unb64(welcome.get("cert"), "welcome cert"))
            theirs = wire.field_str(welcome, "link", "welcome", 100)
            session = client.session.id if client.session else "psi"
            worker = Worker(py, work, 0, [mine, theirs], ENGINES[engine], session, timeout)
            report = worker.wait()
            timings["psi"] = time.perf_counter() - t0 - timings["write"]
            done = client.call("finish", {"status": "complete"})
            if done.header.get("status") != "complete":
                raise PeerError("the server did not complete the PSI; no result")
            peer = client.session.peer if client.session else None
        position = {k: i for i, k in enumerate(keys)}
        matched: list[int] = []
        with work.output.open(encoding="utf-8", newline="") as fh:
            rows = csv.reader(fh)
            if next(rows, None) != ["key"]:
                raise PeerError("the SecretFlow PSI output has an unexpected header; no result")
            for row in rows:
                i = position.get(row[0]) if len(row) == 1 else None
                if i is None:
                    raise PeerError("the SecretFlow PSI output holds a value that is not ours; no result")
                matched.append(i)
        if len(matched) != int(report.get("intersection_count", -1)):
            raise PeerError("the SecretFlow PSI output does not match its own count; no result")
        matched.sort()
        timings["total"] = time.perf_counter() - t0
        return PsiResult(
            mode="intersection",
            own_set_size=len(keys),
            partner_set_size=n_server,
            intersection_size=len(matched),
            matched=matched,
            timings={k: round(v, 3) for k, v in timings.items()},
            partner=(peer.owner or peer.key_id) if peer else "",
            partner_key_id=peer.key_id if peer else "",
        )
    finally:
        if worker is not None:
            worker.kill()
        work.cleanup()
