"""Prometheus text for GET /metrics, read straight off the server's counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import ServerState


def render(state: ServerState) -> str:
    c = state.inbox.counters
    t = state.training
    rows = [
        (
            "agentsdk_steps_ingested_total",
            "counter",
            "Steps accepted into the training inbox.",
            c.steps_ingested,
        ),
        ("agentsdk_chunks_ingested_total", "counter", "Experience chunks accepted.", c.chunks_ingested),
        ("agentsdk_batches_accepted_total", "counter", "Experience batches accepted.", c.batches_accepted),
        (
            "agentsdk_batches_duplicate_total",
            "counter",
            "Experience batches seen before (not counted again).",
            c.batches_duplicate,
        ),
        (
            "agentsdk_batches_rejected_full_total",
            "counter",
            "Experience batches answered 429 (inbox full).",
            c.batches_rejected_full,
        ),
        ("agentsdk_steps_delivered_total", "counter", "Steps handed to the learner.", c.steps_delivered),
        (
            "agentsdk_steps_stale_total",
            "counter",
            "Steps not trained on: beyond the policy-lag limit.",
            c.steps_stale,
        ),
        ("agentsdk_inbox_steps", "gauge", "Steps waiting in the inbox.", state.inbox.steps_queued),
        ("agentsdk_inbox_capacity_steps", "gauge", "Inbox capacity in steps.", state.inbox.capacity_steps),
        ("agentsdk_policy_version", "gauge", "Newest published policy version.", state.policy_version),
        ("agentsdk_act_requests_total", "counter", "Requests to /v1/act answered.", state.act_requests),
        (
            "agentsdk_act_batches_total",
            "counter",
            "onnxruntime runs for /v1/act.",
            state.inference.batches_run,
        ),
        (
            "agentsdk_act_observations_total",
            "counter",
            "Observations run for /v1/act.",
            state.inference.observations_run,
        ),
        ("agentsdk_requests_rejected_total", "counter", "Requests answered with a 4xx.", state.rejected),
        (
            "agentsdk_clients_active",
            "gauge",
            "Distinct clients seen in the last 60 s.",
            state.active_clients(),
        ),
        (
            "agentsdk_training_iterations_total",
            "counter",
            "Training iterations finished.",
            t.get("iteration", 0),
        ),
        (
            "agentsdk_replay_steps_added_total",
            "counter",
            "Env steps added to the learner's replay buffer (DQN, SAC).",
            t.get("replay_steps_added", 0),
        ),
        (
            "agentsdk_episode_return_mean",
            "gauge",
            "Mean return of recent finished episodes.",
            t.get("return_mean") or 0.0,
        ),
    ]
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(lines) + "\n"
