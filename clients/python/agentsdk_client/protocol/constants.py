"""Names and numbers of the wire protocol (PROTOCOL.md): one home for each.

The client, the HTTP front and the trainer import these; nobody spells a
header, a media type or an ONNX tensor name out again.
"""

from __future__ import annotations

# MAJOR.MINOR; peers with different majors refuse each other (PROTOCOL.md section 1).
PROTOCOL_VERSION = "1.2"

# -- HTTP -------------------------------------------------------------------------------
MEDIA_TYPE = "application/msgpack"
PROTOCOL_HEADER = "Agentsdk-Protocol"
WAIT_HEADER = "Agentsdk-Wait"  # long poll of GET /v1/policy, in seconds
MAX_WAIT_S = 30.0  # the server holds a long poll at most this long
REQUEST_ID_HEADER = "X-Request-Id"

# -- experience -------------------------------------------------------------------------
DEFAULT_AGENT_ID = "agent0"  # a chunk without agent_id belongs to this agent
DEFAULT_POLICY_ID = "default_policy"  # the one policy of a server that declares none (RLlib's name)
MAX_ID_CHARS = 128  # episode_id, batch_id and client_id lengths

# -- the exported policy (ONNX) ---------------------------------------------------------
CONTRACT_KEY = "agentsdk_contract"  # ONNX metadata property holding the contract JSON
ONNX_INPUT = "obs"  # float32 [batch, flat_obs_size]
ONNX_OUTPUT = "dist_inputs"  # float32 [batch, dist_inputs_size]


def major(version: str) -> str:
    """The MAJOR part of a MAJOR.MINOR version string."""
    return version.split(".", 1)[0].strip()
