"""The public surface, pinned: ``agentsdk_client.__all__``, ``agentsdk_client.protocol.__all__``.

A change to either list is an API change: update the pinned list here on
purpose, never as a side effect. Also: the HTTP front's entry module never
imports Ray or torch (the light client's own import hygiene is
``clients/python/tests/test_client.py::test_import_pulls_in_no_heavy_dependency``).
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

CLIENT_ALL = [
    "APIError",
    "AgentsdkError",
    "AuthenticationError",
    "BadRequest",
    "Box",
    "ClientStats",
    "CodecError",
    "Dict",
    "Discrete",
    "MultiBinary",
    "MultiDiscrete",
    "PROTOCOL_VERSION",
    "PayloadTooLarge",
    "PolicyClient",
    "ProtocolError",
    "RateLimited",
    "Recorder",
    "ServerError",
    "ServerInfo",
    "ServerUnavailable",
    "Space",
    "SpaceError",
    "TransportError",
    "Tuple",
    "UsageError",
    "VersionMismatch",
    "__version__",
    "decode",
    "encode",
    "space_from_spec",
]

PROTOCOL_ALL = [
    "Box",
    "CodecError",
    "DEFAULT_AGENT_ID",
    "DEFAULT_POLICY_ID",
    "Dict",
    "Discrete",
    "ExperienceChunk",
    "Limits",
    "MultiBinary",
    "MultiDiscrete",
    "PROTOCOL_VERSION",
    "PolicyContract",
    "PolicyInfo",
    "PolicyMapping",
    "Sampler",
    "ServerInfo",
    "Space",
    "SpaceError",
    "Tuple",
    "decode",
    "distribution_for",
    "encode",
    "open_session",
    "read_contract",
    "space_from_json",
    "space_from_spec",
    "space_to_json",
]


@pytest.mark.parametrize(
    ("module_name", "pinned"), [("agentsdk_client", CLIENT_ALL), ("agentsdk_client.protocol", PROTOCOL_ALL)]
)
def test_all_is_pinned(module_name: str, pinned: list[str]) -> None:
    names = importlib.import_module(module_name).__all__
    assert len(names) == len(set(names)), f"duplicates in {module_name}.__all__"
    assert sorted(names) == pinned


@pytest.mark.parametrize("module_name", ["agentsdk_client", "agentsdk_client.protocol"])
def test_every_public_name_is_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from {module_name} import *", namespace)  # the star import, as users write it
    assert set(module.__all__) <= set(namespace)


def test_client_and_protocol_agree_on_shared_names() -> None:
    import agentsdk_client
    import agentsdk_client.protocol

    shared = set(agentsdk_client.__all__) & set(agentsdk_client.protocol.__all__)
    assert shared  # the client re-exports part of the protocol core ...
    for name in shared:  # ... as the very same objects
        assert getattr(agentsdk_client, name) is getattr(agentsdk_client.protocol, name), name


def heavy_modules_after(code: str, heavy: tuple[str, ...]) -> list[str]:
    """The modules of ``heavy`` in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [m for m in result.stdout.strip().split(",") if m]


def test_the_front_entry_module_imports_neither_ray_nor_torch() -> None:
    assert heavy_modules_after("import agentsdk_server.serve", ("ray", "torch")) == []
