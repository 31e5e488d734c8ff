"""The input reader: an RLlib EnvRunner whose ``sample()`` returns what clients uploaded.

It runs inside the trainer process (local to the RLlib driver). It has no env:
``sample()`` asks the front for queued experience over the trainer link and
turns each chunk into a ``SingleAgentEpisode`` (observations flattened here,
as the policy sees them). RLlib does the rest.

Two ways of handing experience to RLlib, following the algorithm
(``server/algorithms.py``):

- *per batch* (on-policy PPO): each ``sample()`` asks for what the current
  policy version's train batch still lacks, so one batch is built from data
  of one version (and the one before, the inbox's lag rule);
- *per fragment* (APPO, IMPALA, DQN, SAC): each ``sample()`` hands over
  ``rollout_fragment_length`` steps, as RLlib's own env runner would, cutting
  uploaded chunks into slices (same episode id, so a replay buffer joins them
  again). RLlib's accounting of updates per sampled step (DQN's and SAC's
  replay ratio, IMPALA's batching) then holds unchanged.

RLlib constructs the runner itself, so the trainer connects the link to the
built runner (``runner.connect(...)``) before the first ``train()``; nothing
is passed through module globals or the (checkpointed) algorithm config.

Facts this relies on (RLlib 2.60, see DESIGN.md): episodes need T+1
observations and T+1 infos with ``len_lookback_buffer=0``; PPO needs
ACTION_LOGP and ACTION_DIST_INPUTS; ``train()`` only sees a full batch once
NUM_ENV_STEPS_SAMPLED is logged.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection

import ray
from ray.rllib.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env import INPUT_ENV_SPACES
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import EPISODE_LEN_MEAN, EPISODE_RETURN_MAX, EPISODE_RETURN_MEAN, WEIGHTS_SEQ_NO
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from agentsdk_client.protocol.chunk import ExperienceChunk
from agentsdk_client.protocol.spaces import Space

from ..link import TrainerLink


def to_episode(
    chunk: ExperienceChunk, wire_obs_space: Space, observation_space, action_space
) -> SingleAgentEpisode:
    """One uploaded chunk -> one RLlib episode fragment (T steps, T+1 flattened observations)."""
    t = chunk.steps
    episode = SingleAgentEpisode(
        # Unique per chunk: RLlib's connectors key batch items by episode id.
        id_=f"{chunk.episode_id}/{chunk.agent_id}/{chunk.chunk_index}",
        observations=list(wire_obs_space.flatten_batch(chunk.observations, t + 1)),
        infos=[{} for _ in range(t + 1)],
        actions=list(chunk.policy_actions),
        rewards=list(chunk.rewards),
        terminated=chunk.terminated,
        truncated=chunk.truncated,
        extra_model_outputs={
            Columns.ACTION_LOGP: list(chunk.logp),
            Columns.ACTION_DIST_INPUTS: list(chunk.dist_inputs),
        },
        observation_space=observation_space,
        action_space=action_space,
        len_lookback_buffer=0,
    )
    return episode.to_numpy()


class ExternalInputEnvRunner(EnvRunner, Checkpointable):
    """Samples by waiting for client uploads; holds a module only as a weights container."""

    def __init__(self, *, config, **kwargs) -> None:
        super().__init__(config=config, **kwargs)
        self.module = config.get_rl_module_spec(spaces=self.get_spaces(), inference_only=True).build()
        self.metrics = MetricsLogger(stats_cls_lookup=config.stats_cls_lookup, root=False)
        self._weights_seq_no = 0
        # Running (return, length) of episodes whose last chunk has not arrived yet.
        self._open_episodes: OrderedDict[str, tuple[float, int]] = OrderedDict()
        # Steps handed out under the current policy version: RLlib calls sample()
        # until a train batch is full, so ask only for what the batch still lacks.
        self._batch_version, self._batch_steps = -1, 0
        # Per-fragment mode: episodes pulled but not yet handed to RLlib (oldest first).
        self._pending: deque[SingleAgentEpisode] = deque()
        self.link: TrainerLink | None = None
        self.wire_observation_space: Space | None = None
        self.per_batch = True

    def connect(self, link: TrainerLink, wire_observation_space: Space, *, per_batch: bool) -> None:
        """Read experience from ``link`` (chunks of ``wire_observation_space``), per batch or per fragment."""
        self.link, self.wire_observation_space, self.per_batch = link, wire_observation_space, per_batch

    def assert_healthy(self) -> None:
        if self.link is None:
            raise RuntimeError("the input reader has no link: call connect(link, space) before training")

    def sample(self, **kwargs) -> list[SingleAgentEpisode]:
        if self.link is None or self.wire_observation_space is None:
            raise RuntimeError("the input reader has no link: call connect(link, space) before training")
        episodes = self._sample_batch() if self.per_batch else self._sample_fragment()
        finished = sum(1 for e in episodes if e.is_done)
        SingleAgentEnvRunner._increase_sampled_metrics(self, sum(len(e) for e in episodes), finished)
        return episodes

    def _pull(self, max_steps: int) -> list[SingleAgentEpisode]:
        assert self.link is not None and self.wire_observation_space is not None
        chunks = self.link.pull(max_steps=max_steps)
        self._track_returns(chunks)
        obs_space, act_space = self.config.observation_space, self.config.action_space
        return [to_episode(c, self.wire_observation_space, obs_space, act_space) for c in chunks]

    def _sample_batch(self) -> list[SingleAgentEpisode]:
        """What the current version's train batch still lacks (at least one chunk)."""
        assert self.link is not None
        if self.link.version != self._batch_version:
            self._batch_version, self._batch_steps = self.link.version, 0
        episodes = self._pull(max(self.config.train_batch_size_per_learner - self._batch_steps, 1))
        self._batch_steps += sum(len(e) for e in episodes)
        return episodes

    def _sample_fragment(self) -> list[SingleAgentEpisode]:
        """Exactly one rollout fragment of steps, cut from the pulled chunks in order."""
        want = max(int(self.config.get_rollout_fragment_length()), 1)
        if not self._pending:
            self._pending.extend(self._pull(want))
        out: list[SingleAgentEpisode] = []
        while self._pending and want > 0:
            head = self._pending[0]
            if len(head) <= want:
                out.append(self._pending.popleft())
                want -= len(head)
            else:
                out.append(head.slice(slice(0, want), len_lookback_buffer=0))
                self._pending[0] = head.slice(slice(want, None), len_lookback_buffer=0)
                want = 0
        return out

    def _track_returns(self, chunks: list[ExperienceChunk]) -> None:
        """Episode returns and lengths, logged when an episode's last chunk arrives."""
        win = self.config.metrics_num_episodes_for_smoothing
        for chunk in chunks:
            key = f"{chunk.episode_id}/{chunk.agent_id}"
            ret, length = self._open_episodes.pop(key, (0.0, 0))
            ret += float(chunk.rewards.sum())
            length += chunk.steps
            if chunk.terminated or chunk.truncated:
                self.metrics.log_value(EPISODE_RETURN_MEAN, ret, window=win)
                self.metrics.log_value(EPISODE_LEN_MEAN, length, window=win)
                self.metrics.log_value(EPISODE_RETURN_MAX, ret, reduce="max", window=win)
            else:
                self._open_episodes[key] = (ret, length)
                if len(self._open_episodes) > 100_000:  # clients that vanished mid-episode
                    self._open_episodes.popitem(last=False)

    def get_metrics(self) -> dict:
        return self.metrics.reduce()

    def get_spaces(self) -> dict:
        spaces = (self.config.observation_space, self.config.action_space)
        return {INPUT_ENV_SPACES: spaces, DEFAULT_MODULE_ID: spaces}

    def stop(self) -> None:
        pass

    # -- Checkpointable: the module's weights and their sequence number ------------------

    def get_ctor_args_and_kwargs(self):
        return ((), {"config": self.config})

    def get_checkpointable_components(self):
        return [(COMPONENT_RL_MODULE, self.module)]

    def get_state(
        self,
        components: str | Collection[str] | None = None,
        *,
        not_components: str | Collection[str] | None = None,
        **kwargs,
    ) -> dict:
        return {COMPONENT_RL_MODULE: self.module.get_state(), WEIGHTS_SEQ_NO: self._weights_seq_no}

    def set_state(self, state: dict) -> None:
        if COMPONENT_RL_MODULE in state:
            seq_no = state.get(WEIGHTS_SEQ_NO, 0)
            if seq_no == 0 or self._weights_seq_no < seq_no:
                module_state = state[COMPONENT_RL_MODULE]
                if isinstance(module_state, ray.ObjectRef):
                    module_state = ray.get(module_state)
                if isinstance(module_state, dict) and DEFAULT_MODULE_ID in module_state:
                    module_state = module_state[DEFAULT_MODULE_ID]
                self.module.set_state(module_state)
            if seq_no > 0:
                self._weights_seq_no = seq_no
