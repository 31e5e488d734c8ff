"""Unit tests of the uploader (``agentsdk_client._uploader``): retries, batching, bounds, the wire body.

No server process: a scripted send function, or the fake server of ``_helpers``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from agentsdk_client import BadRequest, RateLimited, ServerError, decode, encode
from agentsdk_client._uploader import Uploader, _Item

from ._helpers import FakeServer, client_for, fake_chunk, run_episode


class ScriptedSend:
    """A send function that raises the scripted errors first, then accepts."""

    def __init__(self, errors: list[Exception], *, reject_tag: float | None = None) -> None:
        self.errors = errors
        self.reject_tag = reject_tag
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []

    def __call__(self, body: bytes) -> Any:
        message = decode(body)
        self.bodies.append(message)
        self.times.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        if self.reject_tag is not None and any(c["rewards"][0] == self.reject_tag for c in message["chunks"]):
            raise BadRequest("chunks[0].rewards bad", status=422, code="invalid_message")
        return {"accepted_steps": 1, "duplicate": False, "policy_version": 1}


def test_retries_reuse_the_batch_id() -> None:
    send = ScriptedSend([ServerError("boom", status=503), ServerError("boom", status=500)])
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20, backoff_base=0.01)
    uploader.submit(fake_chunk())
    assert uploader.flush(5)
    uploader.close(1)
    assert len(send.bodies) == 3
    assert len({b["batch_id"] for b in send.bodies}) == 1
    assert send.bodies[0]["client_id"] == "t"
    counts = uploader.counts()
    assert counts.steps_acknowledged == 2 and counts.retries == 2 and counts.batches_sent == 3


def test_rate_limit_honours_retry_after() -> None:
    send = ScriptedSend([RateLimited("full", retry_after=0.3, status=429, code="inbox_full")])
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20, backoff_base=0.001)
    uploader.submit(fake_chunk())
    assert uploader.flush(5)
    uploader.close(1)
    assert send.times[1] - send.times[0] >= 0.3
    assert send.bodies[0]["batch_id"] == send.bodies[1]["batch_id"]


def test_client_retries_429_from_the_server_with_the_same_batch() -> None:
    server = FakeServer()
    server.fail_experience = [
        (
            429,
            {"Retry-After": "0.1"},
            encode({"error": {"code": "inbox_full", "message": "full", "request_id": "r"}}),
        )
    ]
    with client_for(server) as client:
        run_episode(client, 2)
        assert client.flush(5)
    assert (
        len(server.experience) == 2 and server.experience[0]["batch_id"] == server.experience[1]["batch_id"]
    )
    assert len(server.chunks()) == 1


def test_a_rejected_chunk_is_isolated_and_not_retried() -> None:
    send = ScriptedSend([], reject_tag=3.0)
    uploader = Uploader(send, client_id="t", max_chunks=8, max_body_bytes=1 << 20)
    for tag in range(6):
        uploader.submit(fake_chunk(tag=tag))
    assert uploader.flush(5)
    uploader.close(1)
    counts = uploader.counts()
    assert counts.steps_rejected == 2 and counts.steps_acknowledged == 10


def test_batches_respect_max_chunks_and_body_size() -> None:
    send = ScriptedSend([])
    gate = threading.Event()
    original = send.__call__

    def slow_send(body: bytes) -> Any:
        gate.wait(5)
        return original(body)

    uploader = Uploader(slow_send, client_id="t", max_chunks=3, max_body_bytes=1500)
    for tag in range(7):
        uploader.submit(fake_chunk(tag=tag))
    gate.set()
    assert uploader.flush(5)
    uploader.close(1)
    sizes = [len(b["chunks"]) for b in send.bodies]
    assert sum(sizes) == 7 and max(sizes) <= 3
    assert [c["rewards"][0] for b in send.bodies for c in b["chunks"]] == list(range(7))  # order kept


def test_flush_times_out_while_the_server_is_down() -> None:
    send = ScriptedSend([ServerError("down", status=503)] * 1000)
    uploader = Uploader(
        send, client_id="t", max_chunks=8, max_body_bytes=1 << 20, backoff_base=0.01, backoff_cap=0.02
    )
    uploader.submit(fake_chunk())
    start = time.monotonic()
    assert uploader.flush(0.2) is False
    assert time.monotonic() - start < 1.0
    assert uploader.close(0.1) is False
    assert uploader.counts().chunks_pending == 1


def test_full_queue_drops_the_oldest() -> None:
    gate = threading.Event()
    send = ScriptedSend([])

    def blocked(body: bytes) -> Any:
        gate.wait(5)
        return send(body)

    uploader = Uploader(blocked, client_id="t", max_chunks=1, max_body_bytes=1 << 20, max_queued_chunks=2)
    for tag in range(6):
        uploader.submit(fake_chunk(tag=tag))
    gate.set()
    assert uploader.flush(5)
    uploader.close(1)
    counts = uploader.counts()
    assert counts.steps_dropped + counts.steps_acknowledged == 12 and counts.steps_dropped >= 2
    sent = [c["rewards"][0] for b in send.bodies for c in b["chunks"]]
    assert sent[-2:] == [4.0, 5.0]  # the newest survive


def test_experience_body_is_byte_identical_to_the_protocol_vector(vectors: Path) -> None:
    raw = (vectors / "experience_request.msgpack").read_bytes()
    message = decode(raw)
    uploader = Uploader(
        lambda body: None, client_id=message["client_id"], max_chunks=8, max_body_bytes=1 << 20
    )
    items = []
    for chunk in message["chunks"]:
        item = _Item(0, len(chunk["rewards"]), chunk)
        item.data = encode(chunk)
        items.append(item)
    assert uploader._body(message["batch_id"], items) == raw
    uploader.close(1)
