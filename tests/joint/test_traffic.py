"""Capture every byte between the two members (a relaying TCP proxy of our own between two real processes)
and search it for raw identifiers and plain hashes of them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
from pathlib import Path

from piguard.joint import normalise

from .conftest import Members, run_cli, write_csv

LAWFUL = ["--purpose", "risk_control", "--legal-basis", "consent", "--consent", "separate"]


class RecordingProxy:
    """Relays 127.0.0.1:<port> to the target and keeps a copy of both directions."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.captured = bytearray()
        self.lock = threading.Lock()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    self.captured += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


def _needles(raw: list[str], id_type: str) -> dict[str, bytes]:
    """Every form an identifier could leak in: as written, canonical, type-prefixed, and the SHA-256,
    SHA-1 and MD5 of each (hex, upper-case hex and raw bytes)."""
    keys = normalise(raw, id_type).keys.to_list()
    out: dict[str, bytes] = {}
    for value, key in zip(raw, keys, strict=True):
        canonical = key.split(":", 1)[1]
        for form in {value, canonical, key, canonical.lstrip("+")}:
            out[f"text {form}"] = form.encode()
            for algo in ("sha256", "sha1", "md5"):
                digest = hashlib.new(algo, form.encode()).digest()
                out[f"{algo} {form}"] = digest
                out[f"{algo}-hex {form}"] = digest.hex().encode()
                out[f"{algo}-HEX {form}"] = digest.hex().upper().encode()
    return out


def test_capture_holds_no_identifier_and_no_plain_hash(tmp_path: Path, members: Members, serve) -> None:
    # Resident IDs with correct check digits (python-stdnum computes them).
    from stdnum.cn import ric

    def with_check(body: str) -> str:
        return body + ric.calc_check_digit(body + "0")

    valid = [with_check(f"11010119900307{i:03d}") for i in range(300)]
    server_ids = valid[:200] + [with_check(f"11010519850101{i:03d}") for i in range(150)]
    querier_ids = valid[100:300]
    s = write_csv(tmp_path / "server.csv", "sfzh", server_ids)
    q = write_csv(tmp_path / "querier.csv", "id", querier_ids)
    srv = serve(
        "psi",
        "serve",
        "--ids",
        str(s),
        "--column",
        "sfzh",
        "--key",
        str(members.key("provider")),
        "--trust",
        str(members.trust),
        *LAWFUL,
    )
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    proxy = RecordingProxy((host, int(port)))
    try:
        out = tmp_path / "m.csv"
        r = run_cli(
            "joint",
            "psi",
            "query",
            f"http://127.0.0.1:{proxy.port}",
            "--ids",
            str(q),
            "--column",
            "id",
            "--key",
            str(members.key("bank")),
            "--trust",
            str(members.trust),
            *LAWFUL,
            "--out",
            str(out),
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["intersection_size"] == 100
    finally:
        proxy.close()
    capture = bytes(proxy.captured)
    assert proxy.connections >= 1
    # The capture is the real protocol: it holds at least the blinded points of both sets (32 bytes each).
    assert len(capture) > 32 * (200 + 350)
    # It is searchable plaintext: the protocol name and the declared purpose travel as written.
    assert b"/joint/v1/hello" in capture and b"ecdh-psi-x25519" in capture and b"risk_control" in capture
    needles = {**_needles(server_ids, "cn_resident_id"), **_needles(querier_ids, "cn_resident_id")}
    leaked = [name for name, needle in needles.items() if needle in capture]
    assert leaked == []
    # Nor the unblinded curve points (BLAKE2b of the canonical key): only powers of them may travel.
    from piguard.joint import ecdh

    keys = normalise(server_ids + querier_ids, "cn_resident_id").keys.to_list()
    assert not [p for p in ecdh.hash_points(keys) if p in capture]
