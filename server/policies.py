"""The policies a server trains and which agent uses which (no Ray import here).

``agentsdk serve`` trains one policy (``default_policy``, every agent maps to
it) unless ``--policies`` declares several, each with its own spaces, and
``--policy-mapping`` says which agent ids use which (PROTOCOL.md section 6).
The front announces the set, validates each agent's data against its
policy's spaces and serves each policy; the trainer builds one RLlib module
per policy. ``PolicySet.to_wire`` is how the front hands the set to the
trainer process (msgpack, no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentsdk_client.protocol.constants import DEFAULT_POLICY_ID
from agentsdk_client.protocol.policies import PolicyInfo, PolicyMapping, check_policy_id
from agentsdk_client.protocol.policy_form import action_dist_size
from agentsdk_client.protocol.spaces import Space
from agentsdk_client.protocol.spec import space_from_spec


@dataclass(frozen=True)
class PolicySpec:
    policy_id: str
    observation_space: Space
    action_space: Space
    trainable: bool = True

    def info(self, distribution: str) -> PolicyInfo:
        return PolicyInfo(
            self.policy_id, self.observation_space, self.action_space, distribution,
            action_dist_size(self.action_space), self.trainable,
        )  # fmt: skip


@dataclass(frozen=True)
class PolicySet:
    policies: dict[str, PolicySpec]
    """By id, in the declared order; the first is the one 1.0/1.1 clients see."""
    mapping: PolicyMapping

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a server needs at least one policy")
        for policy_id in self.policies:
            check_policy_id(policy_id)
        self.mapping.check(set(self.policies))
        if not any(p.trainable for p in self.policies.values()):
            raise ValueError("every policy is marked not trainable: leave at least one trainable")

    @classmethod
    def single(cls, observation_space: Space, action_space: Space) -> PolicySet:
        """One shared policy for every agent: what a server without --policies trains."""
        only = PolicySpec(DEFAULT_POLICY_ID, observation_space, action_space)
        return cls({DEFAULT_POLICY_ID: only}, PolicyMapping.shared(DEFAULT_POLICY_ID))

    @property
    def first(self) -> PolicySpec:
        return next(iter(self.policies.values()))

    @property
    def is_single(self) -> bool:
        """One trainable policy that every agent maps to: RLlib's single-agent stack trains it."""
        return len(self.policies) == 1

    def policy_of(self, agent_id: str) -> PolicySpec | None:
        policy_id = self.mapping.policy_for(agent_id)
        return None if policy_id is None else self.policies[policy_id]

    def to_wire(self) -> dict[str, Any]:
        return {
            "policies": [
                [p.policy_id, p.observation_space.to_spec(), p.action_space.to_spec(), p.trainable]
                for p in self.policies.values()
            ],
            "mapping": self.mapping.to_wire(),
        }

    @classmethod
    def from_wire(cls, value: dict[str, Any]) -> PolicySet:
        policies = {
            pid: PolicySpec(pid, space_from_spec(obs), space_from_spec(act), bool(trainable))
            for pid, obs, act, trainable in value["policies"]
        }
        return cls(policies, PolicyMapping.from_wire(value["mapping"]))
