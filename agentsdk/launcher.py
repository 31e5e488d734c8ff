"""Start a real ``agentsdk serve`` (and demo apps) on this machine: for tests, benchmarks and the demo.

One home for what all three need: a free loopback port, the server as a
subprocess (its output to a log file, kept in memory with arrival times, or
left on the console), waiting until ``/healthz`` answers, reading a
``/metrics`` counter, and a clean stop (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``agentsdk serve ARGS`` in a subprocess on ``port`` (a free one unless given).

    Output goes to ``log_path`` when given; else, with ``capture``, it is kept
    in memory line by line with arrival times (``wait_for``); else it stays on
    this process's console.
    """

    def __init__(
        self,
        *args: str,
        port: int | None = None,
        token: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        capture: bool = False,
        tls: bool = False,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.scheme = "https" if tls else "http"
        self.address = f"{self.scheme}://127.0.0.1:{self.port}"
        self.token = token
        self.log_path = Path(log_path) if log_path else None
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        cmd = [sys.executable, "-m", "agentsdk.cli", "serve", "--port", str(self.port), *args]
        if token:
            cmd += ["--token", token]
        self._log: IO[str] | None = open(self.log_path, "w") if self.log_path else None  # noqa: SIM115
        out = self._log if self._log else subprocess.PIPE if capture else None
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader: threading.Thread | None = None
        if capture and not self._log:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.perf_counter(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    # -- talking to it --------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """(status, body) of a GET on this server, with the token when there is one."""
        if self.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # our own test certificate
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=self.headers())
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_healthy(self, timeout: float = 180.0) -> ServerProcess:
        """Block until ``/healthz`` answers 200; RuntimeError with the output if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.get("/healthz", timeout=1.0)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not healthy after {timeout:.0f} s:\n{self.output()}")

    def metric(self, name: str) -> float:
        """The value of one unlabelled sample in ``/metrics``."""
        status, body = self.get("/metrics")
        text = body.decode()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        if status != 200 or not match:
            raise AssertionError(f"{name} not in /metrics (HTTP {status}):\n{text}")
        return float(match.group(1))

    # -- its output ------------------------------------------------------------------

    def output(self) -> str:
        if self._log is not None and self.log_path is not None:
            if not self._log.closed:  # still running; after stop() the file is complete
                self._log.flush()
            return self.log_path.read_text()
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float) -> tuple[float, re.Match[str]] | None:
        """The first captured output line matching ``pattern`` (arrival time, match), or None."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for stamp, line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return stamp, match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                reader_done = self._reader is None or not self._reader.is_alive()
                if left <= 0 or (self.proc.poll() is not None and reader_done):
                    return None
                self._cond.wait(min(left, 0.5))

    # -- stopping --------------------------------------------------------------------

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM (the server drains and checkpoints), SIGKILL after ``timeout`` s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


def start_app(address: str, mode: str, *extra: str, seed: int = 0, capture: bool = False) -> subprocess.Popen:
    """The demo app (``agentsdk.demo_app``: a gymnasium env + PolicyClient) in its own process.

    With ``capture`` its output (stdout and stderr together, text) is piped back; else it
    shares this process's console.
    """
    cmd = [
        sys.executable,
        "-m",
        "agentsdk.demo_app",
        "--address",
        address,
        "--mode",
        mode,
        "--seed",
        str(seed),
    ]
    pipe = subprocess.PIPE if capture else None
    return subprocess.Popen(
        [*cmd, *extra], stdout=pipe, stderr=subprocess.STDOUT if capture else None, text=True
    )
