"""A real HTTP server on 127.0.0.1 (ephemeral port, own thread) whose access log the tests read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, dict[str, str], bytes] | Callable[["Handler"], tuple[int, dict[str, str], bytes] | None]


@dataclass
class Hit:
    t: float
    method: str
    path: str
    user_agent: str
    cookie: str | None


class Handler(BaseHTTPRequestHandler):
    server: SiteServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.log.append(
                Hit(
                    time.time(),
                    "GET",
                    self.path,
                    self.headers.get("User-Agent", ""),
                    self.headers.get("Cookie"),
                )
            )
        route = srv.routes.get(self.path, srv.default)
        res = route(self) if callable(route) else route
        if res is None:  # the route wrote the response itself (or hangs)
            return
        status, headers, body = res
        self.send_response(status)
        headers = {"Content-Type": "text/html; charset=utf-8", **headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route], default: Route | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes = routes
        self.default: Route = default or (404, {}, b"<html><body>not found</body></html>")
        self.log: list[Hit] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response (size caps, timeouts) are expected here

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.log]

    def __enter__(self) -> SiteServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def html(body: str, head: str = "") -> tuple[int, dict[str, str], bytes]:
    return 200, {}, f"<html><head>{head}</head><body>{body}</body></html>".encode()


def text(status: int, body: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain", **headers}, body.encode()
