"""agentsdk_client: embed a learning policy in an application that owns its loop.

    from agentsdk_client import PolicyClient

    with PolicyClient("http://127.0.0.1:9900") as client:
        episode = client.start_episode()
        action = client.get_action(episode, obs)
        client.log_returns(episode, reward)
        client.end_episode(episode, last_obs)

``Recorder`` logs an app's own decisions for offline training, with no server.

What the client shares with the server (codec, spaces, the policy contract,
...) is the public ``agentsdk_client.protocol`` package.
"""

from ._client import ClientStats, PolicyClient
from ._errors import (
    AgentsdkError,
    APIError,
    AuthenticationError,
    BadRequest,
    PayloadTooLarge,
    ProtocolError,
    RateLimited,
    ServerError,
    ServerUnavailable,
    TransportError,
    UsageError,
    VersionMismatch,
)
from ._recorder import Recorder
from ._version import __version__
from .protocol import (
    PROTOCOL_VERSION,
    Box,
    CodecError,
    Dict,
    Discrete,
    MultiBinary,
    MultiDiscrete,
    ServerInfo,
    Space,
    SpaceError,
    Tuple,
    decode,
    encode,
    space_from_spec,
)

__all__ = [
    "PolicyClient",
    "ClientStats",
    "Recorder",
    "ServerInfo",
    "PROTOCOL_VERSION",
    "__version__",
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
    "AgentsdkError",
    "TransportError",
    "ServerUnavailable",
    "APIError",
    "BadRequest",
    "AuthenticationError",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "ProtocolError",
    "VersionMismatch",
    "UsageError",
]
