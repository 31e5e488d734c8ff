"""``GET /v1/info`` as a typed object: what a server announces to its clients.

The front builds one and sends ``to_wire()``; a client reads it with
``from_wire`` and learns everything it sizes and checks by (spaces, limits,
versions) from it, with no defaults of its own to disagree with the server's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .constants import DEFAULT_POLICY_ID
from .limits import Limits
from .policies import PolicyInfo, PolicyMapping
from .spaces import Space
from .spec import space_from_spec


@dataclass(frozen=True)
class ServerInfo:
    protocol: str
    server_version: str
    observation_space: Space
    action_space: Space
    policy_version: int
    """The newest published policy version (0 = initial weights, -1 = none yet)."""
    algorithm: str
    max_policy_lag: int
    """Versions behind the newest that training still uses (-1 = unlimited)."""
    token_required: bool
    limits: Limits
    dist_inputs_size: int
    distribution: str
    policies: dict[str, PolicyInfo] = field(default_factory=dict)
    """(1.2) Every policy by id, in the server's order; the top-level spaces are the first one's."""
    policy_mapping: PolicyMapping = PolicyMapping.shared(DEFAULT_POLICY_ID)
    """(1.2) Which policy each agent id uses."""

    def __post_init__(self) -> None:
        if not self.policies:  # one policy (a 1.1 server, or built from the top-level fields)
            only = PolicyInfo(
                DEFAULT_POLICY_ID, self.observation_space, self.action_space,
                self.distribution, self.dist_inputs_size,
            )  # fmt: skip
            object.__setattr__(self, "policies", {DEFAULT_POLICY_ID: only})

    def policy_of(self, agent_id: str) -> PolicyInfo:
        """The policy ``agent_id`` acts with; ValueError naming the agent and the fix when none."""
        policy_id = self.policy_mapping.policy_for(agent_id)
        if policy_id is None or policy_id not in self.policies:
            rules = ", ".join(f"{p!r} -> {pid}" for p, pid in self.policy_mapping.rules)
            raise ValueError(
                f"agent {agent_id!r} matches no policy of this server (its mapping: {rules}); "
                "use an agent id the mapping covers, or add a rule to the server's --policy-mapping"
            )
        return self.policies[policy_id]

    def to_wire(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "server_version": self.server_version,
            "observation_space": self.observation_space.to_spec(),
            "action_space": self.action_space.to_spec(),
            "policy_version": self.policy_version,
            "algorithm": self.algorithm,
            "max_policy_lag": self.max_policy_lag,
            "token_required": self.token_required,
            "limits": self.limits.to_wire(),
            "dist_inputs_size": self.dist_inputs_size,
            "distribution": self.distribution,
            "policies": {pid: p.to_wire() for pid, p in self.policies.items()},
            "policy_mapping": self.policy_mapping.to_wire(),
        }

    @classmethod
    def from_wire(cls, value: Any) -> ServerInfo:
        """Parse an info answer; ValueError (a SpaceError for spaces) names the first bad field.

        Keys this version does not know are ignored (a minor protocol bump may add some).
        """
        if not isinstance(value, dict):
            raise ValueError("expected a map")

        def get(name: str, kind: type) -> Any:
            got = value.get(name)
            if not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
                raise ValueError(f"{name}: expected {kind.__name__}, got {got!r}")
            return got

        policies: dict[str, PolicyInfo] = {}
        mapping = PolicyMapping.shared(DEFAULT_POLICY_ID)
        if "policies" in value:  # 1.2
            if not isinstance(value["policies"], dict) or not value["policies"]:
                raise ValueError("policies: expected a non-empty map of policy id to policy")
            policies = {pid: PolicyInfo.from_wire(pid, p) for pid, p in value["policies"].items()}
            mapping = PolicyMapping.from_wire(value.get("policy_mapping"))
            mapping.check(set(policies))
        return cls(
            protocol=get("protocol", str),
            server_version=get("server_version", str),
            observation_space=space_from_spec(value.get("observation_space"), "observation_space"),
            action_space=space_from_spec(value.get("action_space"), "action_space"),
            policy_version=get("policy_version", int),
            algorithm=get("algorithm", str),
            max_policy_lag=get("max_policy_lag", int),
            token_required=get("token_required", bool),
            limits=Limits.from_wire(value.get("limits")),
            dist_inputs_size=get("dist_inputs_size", int),
            distribution=get("distribution", str),
            policies=policies,
            policy_mapping=mapping,
        )
