"""Shared fixtures: real `agentsdk serve` processes on free loopback ports (agentsdk.launcher)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsdk.launcher import ServerProcess, free_port, start_app

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "ServerProcess", "free_port", "logged_server", "run_client"]


def logged_server(
    tmp: Path, *args: str, token: str | None = None, name: str = "server", port: int | None = None
) -> ServerProcess:
    """`agentsdk serve ARGS` with its output in ``tmp/<name>-<port>.log`` (quiet progress lines)."""
    port = port or free_port()
    return ServerProcess(
        *args, "--log-every", "0", port=port, token=token, log_path=tmp / f"{name}-{port}.log", cwd=ROOT
    )


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    started: list[ServerProcess] = []

    def start(
        *args: str, token: str | None = None, wait: bool = True, port: int | None = None
    ) -> ServerProcess:
        server = logged_server(tmp_path, *args, token=token, port=port)
        started.append(server)
        return server.wait_healthy() if wait else server

    yield start
    for server in started:
        server.stop()


def run_client(address: str, mode: str, *extra: str, seed: int = 0) -> subprocess.Popen:
    """The demo app (gymnasium CartPole + PolicyClient) in its own process, output piped back."""
    return start_app(address, mode, *extra, seed=seed, capture=True)
