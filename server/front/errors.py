"""The one error type handlers raise, and the envelope every error answer uses."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: HTTP status, a stable code (PROTOCOL.md section 5) and a message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_message", message)
