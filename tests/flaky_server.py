"""A real HTTP server on localhost that misbehaves on purpose, for the SDK's timeout and
retry tests: each request takes the next step of a script (the last one repeats)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass(frozen=True)
class Reply:
    """Answer ``status`` with a JSON body, after ``delay_s``."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Reset:
    """Read the request, then reset the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class Hangup:
    """Read the request, then close the connection cleanly without answering."""


Step = Reply | Reset | Hangup


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def request(self) -> httpx.Request:
        """As an httpx request, for the helpers in client_fixtures."""
        return httpx.Request(self.method, self.path, headers=self.headers, content=self.body)


class FlakyServer:
    """``with FlakyServer(step, ...) as server:`` serves at ``server.url``."""

    def __init__(self, *script: Step) -> None:
        self.script = list(script)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> FlakyServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def _next(self, seen: Seen) -> Step:
        with self._lock:
            self.seen.append(seen)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
                step = server._next(seen)
                if isinstance(step, Reset):
                    # Linger 0: close() sends RST, as a crashed peer or a load balancer does.
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(step, Hangup):
                    self.close_connection = True
                    return
                # Not time.sleep: tests patch it away to skip the client's backoff.
                threading.Event().wait(step.delay_s)
                payload = json.dumps(step.body).encode()
                self.send_response(step.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in step.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        return Handler
