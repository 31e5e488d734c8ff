"""The agentsdk protocol core: what the client, the HTTP front and the trainer share.

PROTOCOL.md is the authority; this package is its Python implementation, one
module per fact:

    constants      headers, media type, version, ONNX tensor names, default agent id
    limits         the server's request limits and their defaults
    codec          msgpack with numpy arrays (ext type 1)
    spaces         the space classes: checks, batches, flattening
    spec           space specs, wire and JSON forms
    policy_form    actions as the policy emits and RLlib trains on them
    distributions  action distributions and the one Sampler
    chunk          ExperienceChunk, one set of field names from the wire to RLlib
    info           ServerInfo, the typed GET /v1/info
    onnx_policy    the policy contract and the onnxruntime session recipe
    policies       several policies per server (1.2): PolicyInfo, PolicyMapping
    sqlite         the crash-safe SQLite recipe (client spool, server inbox)

It imports numpy and msgpack only (onnxruntime lazily, in ``open_session``),
never Ray, torch or gymnasium: the light client carries it.
"""

from .chunk import ExperienceChunk
from .codec import CodecError, decode, encode
from .constants import DEFAULT_AGENT_ID, DEFAULT_POLICY_ID, PROTOCOL_VERSION
from .distributions import Sampler, distribution_for
from .info import ServerInfo
from .limits import Limits
from .onnx_policy import PolicyContract, open_session, read_contract
from .policies import PolicyInfo, PolicyMapping
from .spaces import Box, Dict, Discrete, MultiBinary, MultiDiscrete, Space, SpaceError, Tuple
from .spec import space_from_json, space_from_spec, space_to_json

__all__ = [
    "PROTOCOL_VERSION",
    "DEFAULT_AGENT_ID",
    "DEFAULT_POLICY_ID",
    "Limits",
    "ServerInfo",
    "ExperienceChunk",
    "encode",
    "decode",
    "CodecError",
    "Space",
    "Box",
    "Discrete",
    "MultiDiscrete",
    "MultiBinary",
    "Dict",
    "Tuple",
    "SpaceError",
    "space_from_spec",
    "space_from_json",
    "space_to_json",
    "Sampler",
    "distribution_for",
    "PolicyContract",
    "open_session",
    "read_contract",
    "PolicyInfo",
    "PolicyMapping",
]
