"""Fixtures of the client's unit tests (helpers to import live in ``_helpers.py``)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._helpers import FakeServer

# clients/python/tests -> ../../../tests/vectors: the protocol vectors shared with the server and other clients
VECTORS = Path(__file__).resolve().parents[3] / "tests" / "vectors"


@pytest.fixture
def vectors() -> Path:
    """The repository's shared protocol vectors (tests/vectors)."""
    return VECTORS


@pytest.fixture
def socket_server() -> Iterator[tuple[FakeServer, str]]:
    """A FakeServer (token "tok") on a real loopback socket: (fake, address)."""
    fake = FakeServer(token="tok")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, content = fake.handle(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/msgpack")
            self.send_header("Content-Length", str(len(content)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
