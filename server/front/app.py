"""The front's routes: one small function per endpoint of PROTOCOL.md.

Each route reads its checked message (``validation``), asks the state's
inbox or inference, and answers; ``http.endpoint`` does what every request
shares.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentsdk_client.protocol.constants import MAX_WAIT_S, PROTOCOL_VERSION, WAIT_HEADER
from agentsdk_client.protocol.info import ServerInfo

from .. import __version__
from . import metrics
from .errors import ApiError
from .http import endpoint, error_response, msgpack_response, read_body
from .inbox import InboxFull
from .state import ServerState
from .validation import parse_act, parse_experience

if TYPE_CHECKING:  # pyarrow is imported only with --record
    from .recorder import Recorder


def need_policy(state: ServerState) -> None:
    if state.policy is None:
        raise ApiError(
            503,
            "unavailable",
            "the server is starting: no policy yet; retry in a second",
            {"Retry-After": "1"},
        )


# -- routes ---------------------------------------------------------------------------


async def healthz(request: Request, state: ServerState) -> Response:
    if state.policy is None or state.stopping:
        return msgpack_response({"status": "stopping" if state.stopping else "starting"}, 503)
    return msgpack_response({"status": "ok"})


async def info(request: Request, state: ServerState) -> Response:
    return msgpack_response(
        ServerInfo(
            protocol=PROTOCOL_VERSION,
            server_version=__version__,
            observation_space=state.observation_space,
            action_space=state.action_space,
            policy_version=state.policy_version,
            algorithm=state.algorithm,
            max_policy_lag=state.inbox.max_policy_lag,
            token_required=state.token is not None,
            limits=state.limits,
            dist_inputs_size=state.dist_size,
            distribution=state.distribution,
        ).to_wire()
    )


async def act(request: Request, state: ServerState) -> Response:
    need_policy(state)
    state.inference.active += 1
    try:
        body = await read_body(request, state.limits.max_body_bytes)
        req = parse_act(body, state.observation_space, state.action_space, state.limits)
        dist_inputs, policy = await state.inference.dist_inputs(req.flat_obs)
    finally:
        state.inference.active -= 1
    answer = state.inference.act(policy, dist_inputs, req.deterministic, req.actions)
    answer["policy_version"] = policy.version
    if req.agent_ids is not None:
        answer["agent_ids"] = req.agent_ids
    state.act_requests += 1
    return msgpack_response(answer)


async def experience(request: Request, state: ServerState, recorder: Recorder | None = None) -> Response:
    if state.stopping:
        raise ApiError(
            503,
            "unavailable",
            "the server is shutting down; retry later with the same batch_id",
            {"Retry-After": "5"},
        )
    body = await read_body(request, state.limits.max_body_bytes)
    req = parse_experience(body, state.observation_space, state.action_space, state.dist_size, state.limits)
    state.saw_client(req.client_id)
    if recorder is not None and recorder.backlogged:  # before the inbox: nothing accepted, nothing lost
        raise ApiError(
            429,
            "recorder_behind",
            f"the recording in {recorder.path} is behind the clients (a slow disk); "
            "retry after Retry-After seconds with the same batch_id",
            {"Retry-After": "1"},
        )
    try:
        if state.inbox.durable:  # the commit waits for an fsync: not on the event loop
            accepted, duplicate = await run_in_threadpool(
                state.inbox.put, req.batch_id, req.chunks, req.steps
            )
        else:
            accepted, duplicate = state.inbox.put(req.batch_id, req.chunks, req.steps)
    except InboxFull as exc:
        raise ApiError(
            429,
            "inbox_full",
            "the training inbox is full; retry after Retry-After seconds with the same batch_id",
            {"Retry-After": f"{exc.retry_after:g}"},
        ) from exc
    if recorder is not None and not duplicate:  # --record: every accepted step once, stale ones too
        recorder.record(req.chunks, req.client_id)
    return msgpack_response(
        {"accepted_steps": accepted, "duplicate": duplicate, "policy_version": state.policy_version}
    )


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
    return msgpack_response(
        {"policy_version": current.version, "onnx": current.onnx, "contract": current.contract},
        headers={"ETag": current.etag},
    )


def _wait_seconds(request: Request) -> float:
    raw = request.headers.get(WAIT_HEADER)
    if raw is None:
        return 0.0
    try:
        return min(max(float(raw), 0.0), MAX_WAIT_S)
    except ValueError as exc:
        raise ApiError(
            400, "bad_request", f"{WAIT_HEADER} must be a number of seconds, got {raw[:20]!r}"
        ) from exc


async def prometheus(request: Request, state: ServerState) -> Response:
    return Response(metrics.render(state), media_type="text/plain; version=0.0.4")


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    code = "method_not_allowed" if status == 405 else "not_found"
    message = (
        f"{request.method} is not allowed on {request.url.path}"
        if status == 405
        else f"no endpoint at {request.url.path}; see PROTOCOL.md"
    )
    return error_response(ApiError(status, code, message), uuid.uuid4().hex[:16])


def create_app(state: ServerState, recorder: Recorder | None = None) -> Starlette:
    """The front's routes; with a ``recorder`` (``--record``) accepted experience is also written to disk."""
    routes = [  # the hot path first: starlette matches routes in order
        Route("/v1/act", endpoint(act, state), methods=["POST"]),
        Route(
            "/v1/experience",
            endpoint(functools.partial(experience, recorder=recorder), state),
            methods=["POST"],
        ),
        Route("/v1/policy", endpoint(policy, state), methods=["GET"]),
        Route("/v1/info", endpoint(info, state), methods=["GET"]),
        Route("/healthz", endpoint(healthz, state, auth=False), methods=["GET"]),
        Route("/metrics", endpoint(prometheus, state), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
