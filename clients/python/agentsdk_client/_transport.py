"""HTTP to the agentsdk server: one request method, one place that maps failures.

Two channels share the headers and the error mapping:

- ``Transport.request`` goes through ``httpx.Client`` (keep-alive pool, timeouts,
  pluggable ``transport=`` for tests). Everything but the act hot path uses it.
- ``Transport.act`` posts to ``/v1/act`` over a per-thread ``http.client``
  connection when the address is plain ``http://`` and no custom transport was
  given. Measured on small keep-alive requests: ~100 us per round trip against
  ~255 us through ``httpx.Client``, which matters for remote ``get_action``.

Foreign exceptions (httpx, sockets, http.client, msgpack) never leave this
module: they become ``ServerUnavailable`` / ``TransportError`` /
``ProtocolError`` with the original as ``__cause__``, and error statuses become
the ``APIError`` family through ``error_from_response``.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

from ._errors import ProtocolError, ServerUnavailable, TransportError, UsageError, error_from_response
from ._version import __version__
from .protocol.codec import CodecError, decode, encode
from .protocol.constants import MEDIA_TYPE, PROTOCOL_HEADER, PROTOCOL_VERSION

# Failures of a kept-alive connection that the server closed in between: safe to
# retry once on a fresh connection (every agentsdk request is idempotent: act is
# stateless, experience carries its batch_id, the rest are GETs).
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


def normalize_address(address: str) -> str:
    """'host:port' or 'http://host:port/' -> 'http://host:port' (no trailing slash)."""
    if not isinstance(address, str) or not address.strip():
        raise UsageError(f"address must be a URL like 'http://127.0.0.1:9900', got {address!r}")
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = "http://" + address
    parts = urllib.parse.urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"address must be an http:// or https:// URL like 'http://127.0.0.1:9900', got {address!r}"
        )
    return address


def _unreachable(address: str, exc: BaseException) -> ServerUnavailable:
    return ServerUnavailable(
        f"cannot reach the agentsdk server at {address} ({type(exc).__name__}: {exc}). "
        "Check the address and that `agentsdk serve` is running there."
    )


def _decode_body(content: bytes, where: str) -> Any:
    try:
        return decode(content)
    except CodecError as exc:
        raise ProtocolError(
            f"{where}: the server's answer is not agentsdk msgpack ({exc}); is this an agentsdk server?"
        ) from exc


def _check_status(status: int, content: bytes, retry_after: str | None) -> None:
    """Raise the family's error for an HTTP error status (envelope decoded when possible)."""
    if status < 400:
        return
    try:
        envelope = decode(content) if content else None
    except CodecError:
        envelope = None
    raise error_from_response(status, envelope, retry_after)


class Transport:
    """Sync HTTP to one server. Thread-safe; ``close()`` releases every connection."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.address = normalize_address(address)
        self.timeout = float(timeout)
        headers = {
            PROTOCOL_HEADER: PROTOCOL_VERSION,
            "Content-Type": MEDIA_TYPE,
            "Accept": MEDIA_TYPE,
            "User-Agent": f"agentsdk-client/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            transport=transport,
        )
        self._urls: dict[str, httpx.URL] = {}
        parts = urllib.parse.urlsplit(self.address)
        self._fast = transport is None and parts.scheme == "http"
        self._host, self._port = parts.hostname or "", parts.port or 80
        self._act_path = parts.path + "/v1/act"
        self._fast_headers = dict(headers)
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()
        self._closed = False

    # -- general requests (httpx) ----------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, httpx.Headers, Any]:
        """Send one request; returns (status, headers, decoded body or None).

        ``body`` is a message (encoded here) or ``bytes`` already encoded.
        Error statuses raise the matching ``APIError``; 304 returns normally.
        """
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.address + path)
        content = body if body is None or isinstance(body, bytes) else encode(body)
        for attempt in (0, 1):
            try:
                response = self._client.request(method, url, content=content, headers=headers)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise _unreachable(self.address, exc) from exc
            except httpx.TimeoutException as exc:
                raise TransportError(
                    f"{method} {path} to {self.address} timed out after {self.timeout:g}s ({type(exc).__name__})"
                ) from exc
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt:
                    raise TransportError(f"{method} {path} to {self.address} failed: {exc}") from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {path} to {self.address} failed: {exc}") from exc
            except RuntimeError as exc:  # httpx raises this on a closed client
                raise UsageError("the client is closed") from exc
        content = response.content
        _check_status(response.status_code, content, response.headers.get("retry-after"))
        decoded = _decode_body(content, f"{method} {path}") if content else None
        return response.status_code, response.headers, decoded

    # -- the act hot path (http.client) ------------------------------------------------

    def act(self, body: bytes) -> Any:
        """POST an encoded act request to /v1/act and return the decoded answer."""
        if not self._fast:
            return self.request("POST", "/v1/act", body)[2]
        conn = getattr(self._local, "conn", None)
        fresh = conn is None
        if fresh:
            conn = self._connect()
        try:
            try:
                conn.request("POST", self._act_path, body, self._fast_headers)
                response = conn.getresponse()
                content = response.read()
            except _STALE_CONNECTION:
                if fresh:
                    raise
                conn.close()
                conn.request("POST", self._act_path, body, self._fast_headers)
                response = conn.getresponse()
                content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            never_connected = conn.sock is None  # the failure was in connect()
            conn.close()
            if isinstance(exc, OSError) and never_connected:
                raise _unreachable(self.address, exc) from exc
            if isinstance(exc, TimeoutError):
                raise TransportError(
                    f"POST /v1/act to {self.address} timed out after {self.timeout:g}s"
                ) from exc
            raise TransportError(
                f"POST /v1/act to {self.address} failed: {type(exc).__name__}: {exc}"
            ) from exc
        status = response.status
        if status >= 400:
            _check_status(status, content, response.getheader("Retry-After"))
        return _decode_body(content, "POST /v1/act")

    def _connect(self) -> http.client.HTTPConnection:
        if self._closed:
            raise UsageError("the client is closed")
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def close(self) -> None:
        self._closed = True
        self._client.close()
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
