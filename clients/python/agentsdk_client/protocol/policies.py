"""Several policies on one server (protocol 1.2): what each one is, and which agent uses which.

A server trains one or more *policies*, each with its own spaces and
distribution; the *mapping* says which policy an agent id uses: an ordered
list of ``(pattern, policy_id)`` rules, the first pattern that matches the
whole agent id wins. Patterns know two wildcards, ``*`` (any run of
characters, none included) and ``?`` (one character); every other character
is literal and case counts. A server with one policy maps every agent to it
(``[("*", policy_id)]``).

The front announces both in ``GET /v1/info``; clients map their agents with
the same rules, so an agent's observation is checked against the right space
before it is sent. PROTOCOL.md section 6 is the authority.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .spaces import Space
from .spec import space_from_spec

_POLICY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_policy_id(policy_id: Any) -> str:
    """A valid policy id (1-64 of letters, digits, ``_ . -``); ValueError naming the rule otherwise."""
    if not isinstance(policy_id, str) or not _POLICY_ID.match(policy_id):
        raise ValueError(
            f"policy id {policy_id!r} is not valid: use 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return policy_id


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` as wildcards, everything else literal, anchored at both ends."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class PolicyInfo:
    """One policy as ``/v1/info`` announces it."""

    policy_id: str
    observation_space: Space
    action_space: Space
    distribution: str
    dist_inputs_size: int
    trainable: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {
            "observation_space": self.observation_space.to_spec(),
            "action_space": self.action_space.to_spec(),
            "distribution": self.distribution,
            "dist_inputs_size": self.dist_inputs_size,
            "trainable": self.trainable,
        }

    @classmethod
    def from_wire(cls, policy_id: str, value: Any) -> PolicyInfo:
        where = f"policies.{policy_id}"
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a map")
        distribution, size = value.get("distribution"), value.get("dist_inputs_size")
        trainable = value.get("trainable", True)
        if not isinstance(distribution, str):
            raise ValueError(f"{where}.distribution: expected str, got {distribution!r}")
        if not isinstance(size, int) or isinstance(size, bool):
            raise ValueError(f"{where}.dist_inputs_size: expected int, got {size!r}")
        if not isinstance(trainable, bool):
            raise ValueError(f"{where}.trainable: expected bool, got {trainable!r}")
        return cls(
            check_policy_id(policy_id),
            space_from_spec(value.get("observation_space"), f"{where}.observation_space"),
            space_from_spec(value.get("action_space"), f"{where}.action_space"),
            distribution,
            size,
            trainable,
        )


@dataclass(frozen=True)
class PolicyMapping:
    """Ordered ``(pattern, policy_id)`` rules; the first whose pattern matches an agent id wins."""

    rules: tuple[tuple[str, str], ...]

    @classmethod
    def shared(cls, policy_id: str) -> PolicyMapping:
        """Every agent uses ``policy_id`` (a server with one policy)."""
        return cls((("*", policy_id),))

    @cached_property
    def _compiled(self) -> tuple[tuple[re.Pattern[str], str], ...]:
        return tuple((pattern_regex(p), pid) for p, pid in self.rules)

    def policy_for(self, agent_id: str) -> str | None:
        """The policy id of ``agent_id``, or None when no rule matches it."""
        for regex, policy_id in self._compiled:
            if regex.fullmatch(agent_id):
                return policy_id
        return None

    def check(self, policy_ids: set[str] | list[str]) -> None:
        """ValueError when a rule names a policy that does not exist."""
        for pattern, policy_id in self.rules:
            if policy_id not in policy_ids:
                raise ValueError(
                    f"the policy mapping sends {pattern!r} to policy {policy_id!r}, which does not exist; "
                    f"use one of {', '.join(sorted(policy_ids))}"
                )

    def to_wire(self) -> list[list[str]]:
        return [[pattern, policy_id] for pattern, policy_id in self.rules]

    @classmethod
    def from_wire(cls, value: Any) -> PolicyMapping:
        if not isinstance(value, list):
            raise ValueError(f"policy_mapping: expected a list of [pattern, policy_id] pairs, got {value!r}")
        rules = []
        for i, rule in enumerate(value):
            if not (isinstance(rule, list) and len(rule) == 2 and all(isinstance(x, str) for x in rule)):
                raise ValueError(
                    f"policy_mapping[{i}]: expected [pattern, policy_id] (two strings), got {rule!r}"
                )
            rules.append((rule[0], check_policy_id(rule[1])))
        return cls(tuple(rules))
