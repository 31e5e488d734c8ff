"""The durable inbox (server/inbox_store.py) without a server: what a restart gets back."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_server.front.inbox import Inbox, InboxClosed
from agentsdk_server.front.inbox_store import INBOX_FILE, InboxStore, InboxStoreError


def chunk(t: int = 200, version: int = 0) -> ExperienceChunk:
    """A chunk as validation hands it to the inbox (CartPole-shaped)."""
    return ExperienceChunk(
        episode_id=uuid.uuid4().hex,
        agent_id="agent0",
        chunk_index=0,
        observations=np.random.default_rng(t).normal(size=(t + 1, 4)).astype(np.float32),
        policy_actions=np.zeros(t, np.int64),
        rewards=np.ones(t, np.float32),
        terminated=True,
        truncated=False,
        logp=np.full(t, -0.69, np.float32),
        dist_inputs=np.zeros((t, 2), np.float32),
        policy_versions=np.full(t, version, np.int64),
    )


def open_inbox(directory: Path, *, resume: bool, remember: int = 1000, lag: int = 1) -> Inbox:
    store = InboxStore.open(directory, resume=resume, remember=remember)
    return Inbox(capacity_steps=100_000, max_policy_lag=lag, remember_batches=remember, store=store)


def test_restart_gets_back_queue_seen_ids_and_counters(tmp_path: Path) -> None:
    inbox = open_inbox(tmp_path, resume=False)
    sent = [chunk(200), chunk(150)]
    assert inbox.put("b1", sent, 350) == (350, False)
    assert inbox.put("b2", [chunk(100)], 100) == (100, False)
    assert inbox.put("b1", sent, 350) == (0, True)
    taken = inbox.take(max_steps=100)  # the oldest chunk only: 200 steps > 100, but at least one
    assert [c.steps for c in taken] == [200]
    inbox.close_store()  # a SIGKILL would lose only the duplicate count (saved with the next commit)

    again = open_inbox(tmp_path, resume=True)
    c = again.counters
    assert (c.steps_ingested, c.chunks_ingested, c.batches_accepted, c.batches_duplicate) == (450, 3, 2, 1)
    assert (c.steps_delivered, again.steps_queued) == (200, 250)
    assert again.put("b1", sent, 350) == (0, True)  # still a duplicate after the restart
    rest = again.take(max_steps=1000)
    assert [x.steps for x in rest] == [150, 100]
    np.testing.assert_array_equal(rest[0].observations, sent[1].observations)
    assert rest[0].episode_id == sent[1].episode_id and rest[0].terminated is True
    assert again.put("b3", [chunk(10)], 10) == (10, False)  # new rows after reloaded ones keep their order
    again.close()
    with pytest.raises(InboxClosed):  # durable: stops handing over at once, the rest stays on disk
        again.take(max_steps=1000)
    assert again.steps_queued == 10
    again.close_store()

    third = open_inbox(tmp_path, resume=True)
    assert (third.counters.steps_ingested, third.counters.steps_delivered, third.steps_queued) == (
        460,
        450,
        10,
    )
    third.close_store()


def test_stale_chunks_are_counted_and_removed(tmp_path: Path) -> None:
    inbox = open_inbox(tmp_path, resume=False, lag=1)
    inbox.put("old", [chunk(50, version=0)], 50)
    inbox.put("new", [chunk(60, version=3)], 60)
    inbox.set_newest_version(3)
    assert [c.steps for c in inbox.take(max_steps=1000)] == [60]
    inbox.close_store()
    again = open_inbox(tmp_path, resume=True)
    assert (again.counters.steps_stale, again.counters.steps_delivered, again.steps_queued) == (50, 60, 0)
    again.close_store()


def test_fresh_start_moves_the_old_inbox_aside(tmp_path: Path) -> None:
    inbox = open_inbox(tmp_path, resume=False)
    inbox.put("b1", [chunk(20)], 20)
    inbox.close_store()
    fresh = open_inbox(tmp_path, resume=False)
    assert fresh.counters.steps_ingested == 0 and fresh.steps_queued == 0
    assert fresh.put("b1", [chunk(20)], 20) == (20, False)
    fresh.close_store()
    assert (tmp_path / (INBOX_FILE + ".old")).exists()
    old = InboxStore(tmp_path / (INBOX_FILE + ".old"), remember=10)
    counters, seen, rows = old.load()
    assert counters["steps_ingested"] == 20 and seen == ["b1"] and len(rows) == 1
    old._db.close()


def test_a_second_server_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    first = open_inbox(tmp_path, resume=False)
    with pytest.raises(InboxStoreError, match="in use by another server"):
        InboxStore.open(tmp_path, resume=True, remember=10)
    first.close_store()


def test_seen_ids_stay_bounded(tmp_path: Path) -> None:
    inbox = open_inbox(tmp_path, resume=False, remember=20)
    for i in range(50):
        inbox.put(f"b{i}", [chunk(1)], 1)
    inbox.close_store()
    again = open_inbox(tmp_path, resume=True, remember=20)
    assert again.seen("b49") and again.seen("b30") and not again.seen("b29")
    assert again.store is not None and again.store._seen_rows <= 22
    again.close_store()
