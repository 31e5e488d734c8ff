"""TLS through the server's flags: `agentsdk serve --ssl-certfile C --ssl-keyfile K --token T`.

A self-signed certificate for 127.0.0.1 is made in tmp_path with the `openssl`
CLI (or the `cryptography` package when the CLI is missing). Checked: /healthz
over HTTPS with that certificate as the CA, /v1/info refused without the token
and served with it, plain HTTP to the TLS port fails, a client that does not
trust the certificate fails clearly, and a `PolicyClient` gets actions and
delivers experience over TLS, in-process through ``transport=`` (an
``httpx.HTTPTransport`` with the CA) and in a subprocess through the
``SSL_CERT_FILE`` environment variable (which httpx honours), remote and local
mode.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import msgpack
import pytest

from agentsdk_client import AgentsdkError, PolicyClient
from conftest import ROOT

pytestmark = pytest.mark.e2e

TOKEN = "tls-test-token-0123456789"


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    if shutil.which("openssl"):
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-days",
                "2",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip(
            "neither the `openssl` CLI nor the `cryptography` package is available to make a certificate"
        )
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path, start_server):
    cert, key = make_self_signed(tmp_path)
    server = start_server(
        "--env",
        "CartPole-v1",
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        token=TOKEN,
        wait=False,
    )
    server.address = f"https://127.0.0.1:{server.port}"
    ctx = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=ctx, timeout=2.0) as http:
        # the same wait as ServerProcess.wait_healthy, over HTTPS
        deadline = time.monotonic() + 120
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.output()}")
            try:
                if http.get(server.address + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"TLS server not healthy:\n{server.output()}"
            time.sleep(0.2)
    server.cert = cert
    server.ctx = ctx
    return server


def _metric(server, name: str) -> float:
    text = httpx.get(server.address + "/metrics", headers=server.headers(), verify=server.ctx, timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def test_https_endpoints_token_and_plain_http(tls_server):
    server = tls_server
    base = server.address
    assert "listening on https://127.0.0.1" in server.output()
    with httpx.Client(verify=server.ctx, timeout=10) as http:
        assert http.get(base + "/healthz").status_code == 200
        # the token is still required over TLS, on every endpoint but /healthz
        assert http.get(base + "/v1/info").status_code == 401
        assert http.get(base + "/v1/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get(base + "/metrics").status_code == 401
        response = http.get(base + "/v1/info", headers=server.headers())
        assert response.status_code == 200
        info = msgpack.unpackb(response.content, raw=False)
        assert info["token_required"] is True
    # a client that does not trust the certificate refuses to talk (verification stays on)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(base + "/healthz", timeout=10)
    # plain HTTP to the TLS port gets no HTTP answer
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)
    except httpx.HTTPError:
        pass
    else:
        assert response.status_code >= 400, "plain HTTP to the TLS port was answered with success"
    assert server.proc.poll() is None


def test_policy_client_over_tls_with_transport(tls_server):
    server = tls_server
    # Without a way to trust the certificate, the constructor fails with the client's own error.
    with pytest.raises(AgentsdkError):
        PolicyClient(server.address, token=TOKEN, timeout=10)
    transport = httpx.HTTPTransport(verify=server.ctx)
    with PolicyClient(
        server.address, inference_mode="remote", token=TOKEN, transport=transport, timeout=30
    ) as client:
        episode = client.start_episode()
        obs = [0.01, 0.02, 0.03, 0.04]
        for _ in range(20):
            action = client.get_action(episode, obs)
            assert action in (0, 1)
            client.log_returns(episode, 1.0)
        client.end_episode(episode, obs)
        assert client.flush(timeout=60)
        assert client.stats.steps_acknowledged == 20
    assert _metric(server, "agentsdk_steps_ingested_total") == 20


CLIENT_SCRIPT = textwrap.dedent("""
    import sys
    from agentsdk_client import PolicyClient

    address, token, mode = sys.argv[1:4]
    with PolicyClient(address, inference_mode=mode, token=token, timeout=30) as client:
        episode = client.start_episode()
        obs = [0.0, 0.0, 0.0, 0.0]
        actions = [client.get_action(episode, obs) for _ in range(10)]
        client.end_episode(episode, obs, truncated=True)
        assert client.flush(timeout=60), "flush timed out"
        print("actions", actions, "acknowledged", client.stats.steps_acknowledged, flush=True)
""")


@pytest.mark.parametrize("mode", ["remote", "local"])
def test_policy_client_over_tls_with_ssl_cert_file(tls_server, mode):
    server = tls_server
    env = {**os.environ, "SSL_CERT_FILE": str(server.cert)}
    env.pop("SSL_CERT_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, server.address, TOKEN, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + "\n--- server:\n" + server.output()
    assert "acknowledged 10" in proc.stdout, proc.stdout
    assert _metric(server, "agentsdk_steps_ingested_total") == 10
