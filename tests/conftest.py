"""Shared fixtures: real `agentsdk serve` processes on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`agentsdk serve` in a subprocess, its output in a log file."""

    def __init__(self, tmp: Path, *args: str, token: str | None = None, name: str = "server") -> None:
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log_path = tmp / f"{name}-{self.port}.log"
        cmd = [sys.executable, "-m", "agentsdk.cli", "serve", "--port", str(self.port), "--log-every", "0", *args]
        if token:
            cmd += ["--token", token]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_healthy(self, timeout: float = 120.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.address + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not healthy after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def metric(self, name: str) -> float:
        text = httpx.get(self.address + "/metrics", headers=self.headers(), timeout=5).text
        match = re.search(rf"^{name} (\S+)$", text, re.M)
        assert match, f"{name} not in /metrics:\n{text}"
        return float(match.group(1))

    def stop(self, timeout: float = 90.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    started: list[ServerProcess] = []

    def start(*args: str, token: str | None = None, wait: bool = True) -> ServerProcess:
        server = ServerProcess(tmp_path, *args, token=token)
        started.append(server)
        return server.wait_healthy() if wait else server

    yield start
    for server in started:
        server.stop()


def run_client(address: str, mode: str, *extra: str, seed: int = 0) -> subprocess.Popen:
    """The demo app (gymnasium CartPole + PolicyClient) in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "agentsdk.demo_app", "--address", address, "--mode", mode, "--seed", str(seed),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
