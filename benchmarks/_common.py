"""Helpers shared by the benchmark scripts: the repository root, describing the machine.

The server subprocess (free port, output lines with arrival times, waiting for
``/healthz``, a clean stop) is ``agentsdk.launcher.ServerProcess``, the one helper
for tests, benchmarks and the demo.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_line() -> str:
    return (
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
        f"load average {load_average()}"
    )
