"""The PolicyServer's HTTP front: routes, and the checks every request passes.

Each route is a small function. ``endpoint`` wraps them with what every
request shares (request id, auth, protocol version, body limit, error
envelope), so a handler only reads its message and answers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentsdk_client._codec import CodecError, decode, encode
from agentsdk_client._version import PROTOCOL_HEADER, PROTOCOL_VERSION

from . import metrics
from .errors import ApiError
from .inbox import InboxFull
from .state import ServerState
from .validation import parse_act, parse_experience

log = logging.getLogger("agentsdk.server")

MSGPACK = "application/msgpack"
WAIT_HEADER = "Agentsdk-Wait"
SERVER_VERSION = "0.1.0"

Handler = Callable[[Request, ServerState], Awaitable[Response]]


def msgpack_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(content), status_code=status, media_type=MSGPACK, headers=headers)


def error_response(exc: ApiError, request_id: str) -> Response:
    body = {"error": {"code": exc.code, "message": exc.message, "request_id": request_id}}
    return msgpack_response(body, exc.status, {**exc.headers, "X-Request-Id": request_id})


def check_protocol(request: Request) -> None:
    sent = request.headers.get(PROTOCOL_HEADER)
    if sent is not None and sent.split(".")[0].strip() != PROTOCOL_VERSION.split(".")[0]:
        raise ApiError(400, "protocol_version_mismatch",
                       f"client speaks protocol {sent[:20]!r} but this server speaks {PROTOCOL_VERSION}; "
                       "use a client and server of the same major version")


def check_token(request: Request, token: str | None) -> None:
    if token is None:
        return
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        what = "no token was sent" if not sent else "the token is wrong"
        raise ApiError(401, "unauthorized", f"this server requires a bearer token and {what}; "
                       "pass the server's --token as PolicyClient(token=...)",
                       {"WWW-Authenticate": "Bearer"})


async def read_body(request: Request, limit: int) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != MSGPACK:
        raise ApiError(415, "unsupported_media_type", f"send the body as {MSGPACK} (PROTOCOL.md)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"body of {declared} bytes exceeds the limit of {limit}; "
                           "send smaller batches")
        body = await request.body()  # the server (h11) enforces the declared length
    else:  # chunked: count as it streams
        chunks, size = [], 0
        async for piece in request.stream():
            size += len(piece)
            if size > limit:
                raise ApiError(413, "body_too_large", f"body exceeds the limit of {limit} bytes; "
                               "send smaller batches")
            chunks.append(piece)
        body = b"".join(chunks)
    try:
        return decode(body)
    except CodecError as exc:
        raise ApiError(400, "malformed_body", f"body is not protocol msgpack: {exc}") from exc


def endpoint(handler: Handler, state: ServerState, *, auth: bool = True) -> Callable[[Request], Awaitable[Response]]:
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
            return error_response(ApiError(500, "internal_error", "internal server error; see the server log"),
                                  request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    return run


def need_policy(state: ServerState) -> None:
    if state.policy is None:
        raise ApiError(503, "unavailable", "the server is starting: no policy yet; retry in a second",
                       {"Retry-After": "1"})


# -- routes ---------------------------------------------------------------------------

async def healthz(request: Request, state: ServerState) -> Response:
    if state.policy is None or state.stopping:
        return msgpack_response({"status": "stopping" if state.stopping else "starting"}, 503)
    return msgpack_response({"status": "ok"})


async def info(request: Request, state: ServerState) -> Response:
    limits = state.limits
    return msgpack_response({
        "protocol": PROTOCOL_VERSION,
        "server_version": SERVER_VERSION,
        "observation_space": state.observation_space.to_spec(),
        "action_space": state.action_space.to_spec(),
        "policy_version": state.policy_version,
        "algorithm": state.algorithm,
        "max_policy_lag": state.inbox.max_policy_lag,
        "token_required": state.token is not None,
        "limits": {"max_body_bytes": state.max_body_bytes, "max_batch": limits.max_batch,
                   "max_chunk_steps": limits.max_chunk_steps, "max_chunks": limits.max_chunks},
        "dist_inputs_size": state.dist_size,
        "distribution": state.distribution_name,
    })


async def act(request: Request, state: ServerState) -> Response:
    need_policy(state)
    state.inference.active += 1
    try:
        body = await read_body(request, state.max_body_bytes)
        req = parse_act(body, state.observation_space, state.action_space, state.limits)
        dist_inputs, version = await state.inference.dist_inputs(req.flat_obs)
    finally:
        state.inference.active -= 1
    answer = state.inference.act(dist_inputs, req.deterministic, req.actions)
    answer["policy_version"] = version
    if req.agent_ids is not None:
        answer["agent_ids"] = req.agent_ids
    state.act_requests += 1
    return msgpack_response(answer)


async def experience(request: Request, state: ServerState) -> Response:
    if state.stopping:
        raise ApiError(503, "unavailable", "the server is shutting down; retry later with the same batch_id",
                       {"Retry-After": "5"})
    body = await read_body(request, state.max_body_bytes)
    req = parse_experience(body, state.observation_space, state.action_space, state.dist_size, state.limits)
    state.saw_client(req.client_id)
    try:
        if state.inbox.durable:  # the commit waits for an fsync: not on the event loop
            accepted, duplicate = await run_in_threadpool(state.inbox.put, req.batch_id, req.chunks, req.steps)
        else:
            accepted, duplicate = state.inbox.put(req.batch_id, req.chunks, req.steps)
    except InboxFull as exc:
        raise ApiError(429, "inbox_full", "the training inbox is full; retry after Retry-After seconds "
                       "with the same batch_id", {"Retry-After": f"{exc.retry_after:g}"}) from exc
    return msgpack_response({"accepted_steps": accepted, "duplicate": duplicate,
                             "policy_version": state.policy_version})


async def policy(request: Request, state: ServerState) -> Response:
    need_policy(state)
    current = state.policy
    assert current is not None
    if request.headers.get("if-none-match") == current.etag:
        wait = _wait_seconds(request)
        if wait > 0:  # long poll: answer as soon as a newer version is published
            try:
                await asyncio.wait_for(state.policy_published().wait(), wait)
            except TimeoutError:
                pass
            current = state.policy
            assert current is not None
        if request.headers.get("if-none-match") == current.etag:
            return Response(status_code=304, headers={"ETag": current.etag})
    return msgpack_response({"policy_version": current.version, "onnx": current.onnx,
                             "contract": current.contract}, headers={"ETag": current.etag})


MAX_WAIT_S = 30.0


def _wait_seconds(request: Request) -> float:
    raw = request.headers.get(WAIT_HEADER)
    if raw is None:
        return 0.0
    try:
        return min(max(float(raw), 0.0), MAX_WAIT_S)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"{WAIT_HEADER} must be a number of seconds, got {raw[:20]!r}") from exc


async def prometheus(request: Request, state: ServerState) -> Response:
    return Response(metrics.render(state), media_type="text/plain; version=0.0.4")


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    code = "method_not_allowed" if status == 405 else "not_found"
    message = (f"{request.method} is not allowed on {request.url.path}" if status == 405
               else f"no endpoint at {request.url.path}; see PROTOCOL.md")
    return error_response(ApiError(status, code, message), uuid.uuid4().hex[:16])


def create_app(state: ServerState) -> Starlette:
    routes = [  # the hot path first: starlette matches routes in order
        Route("/v1/act", endpoint(act, state), methods=["POST"]),
        Route("/v1/experience", endpoint(experience, state), methods=["POST"]),
        Route("/v1/policy", endpoint(policy, state), methods=["GET"]),
        Route("/v1/info", endpoint(info, state), methods=["GET"]),
        Route("/healthz", endpoint(healthz, state, auth=False), methods=["GET"]),
        Route("/metrics", endpoint(prometheus, state), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
