"""The client's exception family.

    AgentsdkError
    ├── TransportError            the server could not be reached or did not answer
    │   └── ServerUnavailable     connect refused / timed out (retrying makes sense)
    ├── APIError                  the server answered with an error (status, code, request id)
    │   ├── BadRequest            400 / 422: the message was wrong (field named in .message)
    │   ├── AuthenticationError   401: missing or wrong token
    │   ├── PayloadTooLarge       413: the body exceeded the server's limit
    │   ├── RateLimited           429: the server is full; .retry_after says when to retry
    │   └── ServerError           5xx
    ├── ProtocolError             the server speaks another protocol version or sent garbage
    │   └── VersionMismatch
    └── UsageError                the client was used wrongly (e.g. a value outside the space)

No httpx or msgpack exception escapes a public method: they are mapped here,
with the original kept as ``__cause__``.
"""

from __future__ import annotations

from typing import Any


class AgentsdkError(Exception):
    """Root of every error the client raises."""


class TransportError(AgentsdkError):
    """The request did not complete. ``retryable`` says whether trying again may help."""

    retryable = True


class ServerUnavailable(TransportError):
    """Nothing answered at the address."""


class APIError(AgentsdkError):
    """The server answered with an error envelope."""

    retryable = False

    def __init__(self, message: str, *, status: int, code: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        extra = (
            f" [{self.status} {self.code}" + (f", request {self.request_id}" if self.request_id else "") + "]"
        )
        return self.message + extra


class BadRequest(APIError):
    """The server rejected the message's content; fix the data, do not retry."""


class AuthenticationError(APIError):
    """Pass the server's token: PolicyClient(..., token=...) or AGENTSDK_TOKEN."""


class PayloadTooLarge(APIError):
    """Send smaller batches (the server's limit is in /v1/info 'limits')."""


class RateLimited(APIError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    retryable = True


class ProtocolError(AgentsdkError):
    """The other side does not speak this protocol."""


class VersionMismatch(ProtocolError):
    """Client and server protocol major versions differ; upgrade the older one."""


class UsageError(AgentsdkError, ValueError):
    """The client was called wrongly; the message says what was expected."""


def error_from_response(status: int, envelope: Any, retry_after: str | None = None) -> APIError:
    """Map an HTTP error status and the server's envelope to the family (one place)."""
    err = envelope.get("error") if isinstance(envelope, dict) else None
    if isinstance(err, dict):
        code, message, request_id = (
            str(err.get("code", "")),
            str(err.get("message", "")),
            str(err.get("request_id", "")),
        )
    else:
        code, message, request_id = "", f"server answered HTTP {status}", ""
    kw = {"status": status, "code": code, "request_id": request_id}
    if code == "protocol_version_mismatch":
        return VersionMismatch(f"{message} [{status} {code}]")  # type: ignore[return-value]
    if status == 401:
        return AuthenticationError(message, **kw)
    if status == 413:
        return PayloadTooLarge(message, **kw)
    if status == 429:
        try:
            after = float(retry_after) if retry_after else 1.0
        except ValueError:
            after = 1.0
        return RateLimited(message, retry_after=after, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return BadRequest(message, **kw)
