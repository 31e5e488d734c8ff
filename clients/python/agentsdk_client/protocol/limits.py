"""The server's request limits: their defaults live here and nowhere else.

The server announces its limits in ``GET /v1/info``; clients size their
requests by what was announced, never by a fallback of their own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body accepted (413 beyond)."""
    max_batch: int = 1024
    """Most observations in one /v1/act request."""
    max_chunks: int = 256
    """Most chunks in one /v1/experience request."""
    max_chunk_steps: int = 4096
    """Most steps (T) in one experience chunk; it carries T+1 observations."""

    def to_wire(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_wire(cls, value: Any) -> Limits:
        """The announced limits; ValueError naming the first missing or bad one."""
        if not isinstance(value, dict):
            raise ValueError("limits: expected a map")
        out = {}
        for name in cls.__dataclass_fields__:
            got = value.get(name)
            if not isinstance(got, int) or isinstance(got, bool) or got < 1:
                raise ValueError(f"limits.{name}: expected an int >= 1, got {got!r}")
            out[name] = got
        return cls(**out)
