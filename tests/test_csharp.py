"""The C# side (examples/unity_bridge): it builds with Mono, its codec passes the shared
vectors, and the headless C# CartPole app trains against a real `agentsdk serve`.

Needs Debian's `mono-mcs`, `mono-runtime` and `libmono-system-net-http4.0-cil` (CI installs
them); without `mcs` these tests are skipped with that reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agentsdk_client import PROTOCOL_VERSION
from conftest import ROOT, ServerProcess, logged_server

BRIDGE = ROOT / "examples" / "unity_bridge"
APP = BRIDGE / "bin" / "app.exe"
VECTORS = BRIDGE / "bin" / "vectors.exe"
TOKEN = "c-sharp-test-token"

pytestmark = pytest.mark.skipif(
    shutil.which("mcs") is None or shutil.which("mono") is None,
    reason="Mono is not installed: apt-get install mono-mcs mono-runtime libmono-system-net-http4.0-cil",
)


@pytest.fixture(scope="module")
def built() -> Path:
    proc = subprocess.run(["bash", str(BRIDGE / "build.sh")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"build.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return BRIDGE / "bin"


def run_app(address: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["mono", str(APP), "--address", address, *args], capture_output=True, text=True, timeout=timeout
    )


def result_line(out: str) -> dict[str, str]:
    match = re.search(r"^RESULT (.*)$", out, re.M)
    assert match, f"no RESULT line in:\n{out[-3000:]}"
    return dict(pair.split("=", 1) for pair in match.group(1).split())


# -- codec ----------------------------------------------------------------------------------


def test_build_compiles_the_runtime_the_app_and_the_unity_folder(built):
    for name in ("app.exe", "vectors.exe", "clienttests.exe", "unity_check.dll"):
        assert (built / name).is_file(), name


def test_csharp_codec_passes_every_shared_vector(built):
    proc = subprocess.run(
        ["mono", str(VECTORS), str(ROOT / "tests" / "vectors")], capture_output=True, text=True, timeout=60
    )
    total = len(list((ROOT / "tests" / "vectors").glob("*.msgpack")))
    cases = len(json.loads((ROOT / "tests" / "vectors" / "distributions.json").read_text()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{total} passed, 0 failed" in proc.stdout, proc.stdout
    # distributions.json: every distribution's deterministic action and logp (PROTOCOL.md section 3)
    assert f"distributions: {cases} passed, 0 failed" in proc.stdout, proc.stdout


def test_csharp_client_unit_checks_pass(built):
    """Chunk cutting, batch_id reuse on retries, error mapping: against a fake HTTP handler."""
    proc = subprocess.run(
        ["mono", str(built / "clienttests.exe")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and " 0 failed" in proc.stdout, proc.stdout + proc.stderr


# -- against a real server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server(tmp_path_factory) -> ServerProcess:
    server = logged_server(
        tmp_path_factory.mktemp("csharp"), "--env", "CartPole-v1", token=TOKEN, name="token-server"
    )
    try:
        yield server.wait_healthy()
    finally:
        server.stop()


@pytest.mark.e2e
@pytest.mark.learning
def test_headless_csharp_app_learns_cartpole_and_every_step_is_ingested(built, start_server):
    server = start_server("--env", "CartPole-v1", "--seed", "1")
    proc = run_app(
        server.address,
        "--steps",
        "100000",
        "--stop-at-return",
        "150",
        "--seed",
        "1",
        "--quiet",
        "--check-policy",
        timeout=480,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{out[-3000:]}\n--- server ---\n{server.output()[-3000:]}"
    result = result_line(proc.stdout)
    print(re.findall(r"^progress .*$", proc.stdout, re.M), result, sep="\n")  # the learning curve, with -s

    assert float(result["mean_return_last20"]) >= 150, out[-3000:]
    steps = int(result["steps"])
    assert int(result["uploaded"]) == steps and int(result["dropped"]) == 0, result
    assert server.metric("agentsdk_steps_ingested_total") == steps
    # The contract embedded in the exported ONNX reads back in C# and matches GET /v1/policy's.
    assert re.search(r"^POLICY .*contract=ok", proc.stdout, re.M), out[-2000:]


@pytest.mark.e2e
def test_right_token_is_accepted(built, token_server):
    before = token_server.metric("agentsdk_steps_ingested_total")
    proc = run_app(token_server.address, "--token", TOKEN, "--steps", "300", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(result_line(proc.stdout)["uploaded"]) == 300
    assert token_server.metric("agentsdk_steps_ingested_total") - before == 300


@pytest.mark.e2e
def test_wrong_token_fails_fast_with_the_servers_401_message(built, token_server):
    started = time.monotonic()
    proc = run_app(token_server.address, "--token", "not-the-token", "--steps", "100", timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert "AuthenticationException" in proc.stderr and "401 unauthorized" in proc.stderr, proc.stderr
    assert "RESULT" not in proc.stdout


@pytest.mark.e2e
def test_protocol_mismatch_fails_fast_naming_both_versions(built, token_server):
    started = time.monotonic()
    proc = run_app(token_server.address, "--token", TOKEN, "--protocol", "9.0", "--steps", "100", timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert "VersionMismatchException" in proc.stderr and "protocol_version_mismatch" in proc.stderr, (
        proc.stderr
    )
    assert "9.0" in proc.stderr and PROTOCOL_VERSION in proc.stderr, proc.stderr
