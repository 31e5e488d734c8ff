__version__ = "0.1.0"
# The wire protocol this client speaks (PROTOCOL.md). Sent as the Agentsdk-Protocol header.
PROTOCOL_VERSION = "1.0"
PROTOCOL_HEADER = "Agentsdk-Protocol"
