"""Local inference: run the server's exported ONNX policy in this process.

``LocalPolicy`` downloads ``GET /v1/policy``, builds an onnxruntime session
(one intra-op and one inter-op thread) and samples actions with the numpy
distributions that the server uses, so local and remote actions agree. A
background thread polls for new versions every ``update_interval`` seconds
(``If-None-Match`` with the last ETag; 304 means unchanged) and installs a new model
with one attribute assignment of an immutable ``_Model``: ``act`` reads that
attribute once per call and never waits for weights.

onnxruntime is imported here, lazily, only when local mode is asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._errors import AgentsdkError, ProtocolError, UsageError
from ._transport import Transport
from .protocol.constants import WAIT_HEADER
from .protocol.distributions import Sampler
from .protocol.onnx_policy import PolicyContract, open_session, read_contract
from .protocol.policy_form import action_dist_size
from .protocol.spaces import Box, Space, SpaceError

log = logging.getLogger("agentsdk_client")

# Each long poll lasts at most this long: bounds how long close() waits for the thread.
LONG_POLL_S = 2.0


# (env action, policy-form action, logp, dist_inputs row, policy version)
Decision = tuple[Any, Any, float, Any, int]


class _Model:
    """One loaded policy version. Immutable after construction."""

    __slots__ = ("version", "etag", "session", "run", "outputs", "input_name", "sampler")

    def __init__(
        self,
        version: int,
        onnx_bytes: bytes,
        obs_space: Space,
        action_space: Space,
        rng: np.random.Generator,
        etag: str = "",
    ) -> None:
        try:
            session = open_session(onnx_bytes)
        except ImportError as exc:
            raise UsageError(
                "inference_mode='local' needs onnxruntime: pip install 'agentsdk-client[onnx]' "
                "(or use inference_mode='remote')"
            ) from exc
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ProtocolError(f"policy version {version} is not a loadable ONNX model: {exc}") from exc
        contract = _contract(session, version, obs_space, action_space)
        self.version = version
        self.etag = etag
        self.session = session
        self.input_name = contract.input_name
        self.outputs = [contract.output_name]
        try:  # each version carries its own distribution (DQN's epsilon changes with the version)
            self.sampler = Sampler(action_space, rng, contract.action_distribution())
        except ValueError as exc:
            raise ProtocolError(f"policy version {version} cannot be acted on locally: {exc}") from exc
        # InferenceSession.run re-validates its arguments on every call; the bound C
        # session skips that (about 1 us of a 4 us CartPole run). Fall back if absent.
        inner = getattr(session, "_sess", None)
        self.run = session.run
        probe = np.zeros((1, obs_space.flat_size), np.float32)
        want = (1, action_dist_size(action_space))
        out = self.run(self.outputs, {self.input_name: probe}, None)[0]
        if out.shape != want:
            raise ProtocolError(f"policy version {version} outputs shape {out.shape}, expected {want}")
        if inner is not None:
            try:
                inner.run(self.outputs, {self.input_name: probe}, None)
                self.run = inner.run
            except Exception:  # a different onnxruntime build: keep the public method
                pass


def _contract(session: Any, version: int, obs_space: Space, action_space: Space) -> PolicyContract:
    try:
        contract = read_contract(session)
    except (SpaceError, ValueError) as exc:
        raise ProtocolError(f"policy version {version}: {exc}") from exc
    if not contract.fits(obs_space, action_space):
        raise ProtocolError(
            f"policy version {version} was exported for observations {contract.observation_space!r} and "
            f"actions {contract.action_space!r}, but the server announced {obs_space!r} and {action_space!r}"
        )
    return contract


class LocalPolicy:
    """The newest downloaded policy, its sampler and the thread that refreshes it."""

    def __init__(
        self,
        transport: Transport,
        obs_space: Space,
        action_space: Space,
        *,
        update_interval: float,
        seed: int | None = None,
        on_new_version: Callable[[int], None] | None = None,
    ) -> None:
        self._on_new_version = on_new_version
        self._transport = transport
        self._obs_space = obs_space
        self._action_space = action_space
        self._rng = np.random.default_rng(seed)
        if isinstance(obs_space, Box):
            size, dtype = obs_space.flat_size, np.float32
            self._flatten = lambda obs: obs.reshape(1, size).astype(dtype, copy=False)
        else:
            self._flatten = lambda obs: obs_space.flatten_batch(obs_space.stack([obs]), 1)
        self._refresh_lock = threading.Lock()
        self._model: _Model | None = None
        self.refresh()
        self._stop = threading.Event()
        self._interval = float(update_interval)
        self._thread = threading.Thread(target=self._poll, name="agentsdk-policy-refresh", daemon=True)
        self._thread.start()

    @property
    def version(self) -> int:
        return self._model.version  # type: ignore[union-attr]

    def act(self, obs: Any, deterministic: bool) -> Decision:
        model = self._model  # one read: a swap in between cannot mix two versions
        dist_inputs = model.run(model.outputs, {model.input_name: self._flatten(obs)}, None)[0]  # type: ignore[union-attr]
        env, policy, logp = model.sampler.sample_one(dist_inputs, deterministic)  # type: ignore[union-attr]
        return env, policy, logp, dist_inputs[0], model.version  # type: ignore[union-attr]

    def evaluate(self, obs: Any, action: Any) -> Decision:
        model = self._model
        dist_inputs = model.run(model.outputs, {model.input_name: self._flatten(obs)}, None)[0]  # type: ignore[union-attr]
        policy, logp = model.sampler.evaluate(dist_inputs, self._action_space.stack([action]))  # type: ignore[union-attr]
        row = policy[0] if policy.ndim > 1 else int(policy[0])
        return action, row, float(logp[0]), dist_inputs[0], model.version  # type: ignore[union-attr]

    def refresh(self, wait: float = 0.0) -> bool:
        """Fetch the newest policy; True when a new version was installed.

        ``wait`` > 0 long-polls: the server answers as soon as a newer version
        is published, or after ``wait`` seconds with nothing new.
        """
        with self._refresh_lock:
            current = self._model
            headers = {"If-None-Match": current.etag} if current is not None and current.etag else None
            if headers is not None and wait > 0:
                headers[WAIT_HEADER] = f"{wait:g}"
            status, response_headers, body = self._transport.request("GET", "/v1/policy", headers=headers)
            if status == 304:
                return False
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("onnx"), bytes)
                or not isinstance(body.get("policy_version"), int)
            ):
                raise ProtocolError("GET /v1/policy answer lacks 'onnx' (bin) or 'policy_version' (int)")
            version = body["policy_version"]
            etag = response_headers.get("etag", "")
            # A different ETag with a lower version is a server resumed from an older
            # checkpoint: take it (the dead run's newer weights are gone).
            if current is not None and (etag == current.etag if etag else version <= current.version):
                return False
            self._model = _Model(version, body["onnx"], self._obs_space, self._action_space, self._rng, etag)
            if self._on_new_version is not None and current is not None:
                self._on_new_version(version)
            log.info("agentsdk: installed policy version %d", version)
            return True

    def _poll(self) -> None:
        failing = False
        # Long poll, so a new version arrives as soon as it is published; the
        # wait stays well inside the transport's timeout.
        wait = max(min(self._interval, LONG_POLL_S, self._transport.timeout - 2.0), 0.0)
        pause = 0.0
        while not self._stop.wait(self._interval if failing else pause):
            try:
                started = time.monotonic()
                changed = self.refresh(wait)
                # A quick "unchanged" means the server did not hold the request: poll politely.
                pause = self._interval if not changed and time.monotonic() - started < wait / 2 else 0.0
                if failing:
                    log.warning("agentsdk: policy refresh works again")
                failing = False
            except AgentsdkError as exc:
                # Say it once per outage, not every interval; the app keeps acting meanwhile.
                if not failing:
                    log.warning(
                        "agentsdk: could not refresh the local policy (keeping version %d): %s",
                        self.version,
                        exc,
                    )
                failing = True

    def close(self) -> None:
        self._stop.set()
        # Long polls are short, so the thread sees the stop flag promptly; joining it
        # means no policy is installed while the interpreter shuts down.
        self._thread.join(timeout=LONG_POLL_S + self._transport.timeout)
