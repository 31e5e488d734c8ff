__version__ = "0.1.0"  # the agentsdk-client distribution (the protocol version is protocol.constants)
