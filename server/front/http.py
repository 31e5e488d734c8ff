"""What every request to the front passes through: ``endpoint`` and its checks.

``endpoint`` wraps a route with what every request shares (request id,
auth, protocol version, error envelope); ``read_body`` enforces the media
type and the body limit and decodes the protocol msgpack. A route then only
reads its message and answers.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agentsdk_client.protocol.codec import CodecError, decode, encode
from agentsdk_client.protocol.constants import (
    MEDIA_TYPE,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    REQUEST_ID_HEADER,
    major,
)

from .errors import ApiError
from .state import ServerState

log = logging.getLogger("agentsdk.server")

Handler = Callable[[Request, ServerState], Awaitable[Response]]


def msgpack_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(content), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def error_response(exc: ApiError, request_id: str) -> Response:
    body = {"error": {"code": exc.code, "message": exc.message, "request_id": request_id}}
    return msgpack_response(body, exc.status, {**exc.headers, REQUEST_ID_HEADER: request_id})


def check_protocol(request: Request) -> None:
    sent = request.headers.get(PROTOCOL_HEADER)
    if sent is not None and major(sent) != major(PROTOCOL_VERSION):
        raise ApiError(
            400,
            "protocol_version_mismatch",
            f"client speaks protocol {sent[:20]!r} but this server speaks {PROTOCOL_VERSION}; "
            "use a client and server of the same major version",
        )


def check_token(request: Request, token: str | None) -> None:
    if token is None:
        return
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        what = "no token was sent" if not sent else "the token is wrong"
        raise ApiError(
            401,
            "unauthorized",
            f"this server requires a bearer token and {what}; "
            "pass the server's --token as PolicyClient(token=...)",
            {"WWW-Authenticate": "Bearer"},
        )


async def read_body(request: Request, limit: int) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != MEDIA_TYPE:
        raise ApiError(415, "unsupported_media_type", f"send the body as {MEDIA_TYPE} (PROTOCOL.md)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        if int(declared) > limit:
            raise ApiError(
                413,
                "body_too_large",
                f"body of {declared} bytes exceeds the limit of {limit}; send smaller batches",
            )
        body = await request.body()  # the server (h11) enforces the declared length
    else:  # chunked: count as it streams
        chunks, size = [], 0
        async for piece in request.stream():
            size += len(piece)
            if size > limit:
                raise ApiError(
                    413, "body_too_large", f"body exceeds the limit of {limit} bytes; send smaller batches"
                )
            chunks.append(piece)
        body = b"".join(chunks)
    try:
        return decode(body)
    except CodecError as exc:
        raise ApiError(400, "malformed_body", f"body is not protocol msgpack: {exc}") from exc


def endpoint(
    handler: Handler, state: ServerState, *, auth: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        request_id = request.headers.get("x-request-id", "")[:64] or os.urandom(8).hex()
        try:
            if auth:
                check_token(request, state.token)
                check_protocol(request)
            response = await handler(request, state)
        except ApiError as exc:
            state.rejected += exc.status < 500
            return error_response(exc, request_id)
        except Exception:
            log.exception("internal error in %s (request %s)", request.url.path, request_id)
            return error_response(
                ApiError(500, "internal_error", "internal server error; see the server log"), request_id
            )
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    return run
