"""Hostile and malformed input against a real `agentsdk serve`: 4xx with a clear message, server lives on.

One server for the module; no test relies on what another sent it: a test that
reads a counter measures it before and after its own requests.
"""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import httpx
import msgpack
import numpy as np
import pytest

from agentsdk_client import PROTOCOL_VERSION, decode, encode
from conftest import logged_server

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = logged_server(
        tmp_path_factory.mktemp("hostile"), "--env", "CartPole-v1", "--max-body-bytes", "200000", token=TOKEN
    ).wait_healthy()
    yield proc
    proc.stop()


def post(
    server,
    path: str,
    body: bytes,
    *,
    token: str | None = TOKEN,
    protocol: str | None = "1.0",
    content_type: str = "application/msgpack",
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if protocol:
        headers["Agentsdk-Protocol"] = protocol
    return httpx.post(server.address + path, content=body, headers=headers, timeout=10)


def error_of(resp: httpx.Response) -> dict:
    body = decode(resp.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}, body
    assert body["error"]["request_id"] == resp.headers["x-request-id"]
    return body["error"]


def good_obs() -> dict:
    return {"observations": np.zeros((1, 4), np.float32)}


def chunk(t: int = 5) -> dict:
    return {
        "episode_id": uuid.uuid4().hex,
        "chunk_index": 0,
        "observations": np.zeros((t + 1, 4), np.float32),
        "policy_actions": np.zeros(t, np.int64),
        "rewards": np.ones(t, np.float32),
        "terminated": True,
        "truncated": False,
        "logp": np.full(t, -0.69, np.float32),
        "dist_inputs": np.zeros((t, 2), np.float32),
        "policy_versions": np.zeros(t, np.int64),
    }


class Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_pickle_payload_is_rejected_and_never_executed(server, tmp_path):
    marker = tmp_path / "pwned"
    for path in ("/v1/act", "/v1/experience"):
        resp = post(server, path, pickle.dumps(Exploit(str(marker))))
        assert resp.status_code == 400, resp.content
        assert error_of(resp)["code"] == "malformed_body"
    # A pickle smuggled inside msgpack bytes, and msgpack_numpy's object layout, go nowhere either.
    smuggled = encode({"observations": pickle.dumps(Exploit(str(marker)))})
    assert post(server, "/v1/act", smuggled).status_code == 422
    mnp = msgpack.packb(
        {
            "observations": {
                b"nd": True,
                b"type": "|O",
                b"shape": [1],
                b"data": pickle.dumps(Exploit(str(marker))),
            }
        },
        use_bin_type=True,
    )
    assert post(server, "/v1/act", mnp).status_code in (400, 422)
    assert not marker.exists()


def test_unknown_extension_type_is_malformed(server):
    body = msgpack.packb({"observations": msgpack.ExtType(42, b"\x00")}, use_bin_type=True)
    resp = post(server, "/v1/act", body)
    assert resp.status_code == 400 and "extension type 42" in error_of(resp)["message"]


def test_wrong_dtype_names_expected_and_received(server):
    resp = post(server, "/v1/act", encode({"observations": np.zeros((1, 4), np.float64)}))
    assert resp.status_code == 422
    message = error_of(resp)["message"]
    assert "observations" in message and "float32" in message and "float64" in message


def test_wrong_shape_names_expected_and_received(server):
    resp = post(server, "/v1/act", encode({"observations": np.zeros((1, 3), np.float32)}))
    assert resp.status_code == 422
    message = error_of(resp)["message"]
    assert "[1, 4]" in message and "(1, 3)" in message


def test_out_of_space_values_rejected(server):
    obs = np.array([[np.nan, 0, 0, 0]], np.float32)
    resp = post(server, "/v1/act", encode({"observations": obs}))
    assert resp.status_code == 422 and "outside the bounds" in error_of(resp)["message"]
    bad = chunk()
    bad["policy_actions"] = np.full(5, 7, np.int64)
    resp = post(server, "/v1/experience", encode({"batch_id": uuid.uuid4().hex, "chunks": [bad]}))
    assert resp.status_code == 422 and "chunks[0].policy_actions" in error_of(resp)["message"]


def test_missing_field_named(server):
    bad = chunk()
    del bad["logp"]
    resp = post(server, "/v1/experience", encode({"batch_id": uuid.uuid4().hex, "chunks": [bad]}))
    assert resp.status_code == 422 and "chunks[0].logp" in error_of(resp)["message"]


def test_protocol_major_mismatch_names_both_versions(server):
    resp = post(server, "/v1/act", encode(good_obs()), protocol="9.0")
    assert resp.status_code == 400
    err = error_of(resp)
    assert (
        err["code"] == "protocol_version_mismatch"
        and "9.0" in err["message"]
        and PROTOCOL_VERSION in err["message"]
    )


def test_oversized_body_gets_413(server):
    resp = post(server, "/v1/experience", b"\x00" * 300_000)
    assert resp.status_code == 413 and error_of(resp)["code"] == "body_too_large"


def test_missing_or_wrong_token_gets_401(server):
    for token in (None, "wrong"):
        resp = post(server, "/v1/act", encode(good_obs()), token=token)
        assert resp.status_code == 401 and "token" in error_of(resp)["message"]
    assert httpx.get(server.address + "/v1/info").status_code == 401
    assert httpx.get(server.address + "/healthz").status_code == 200


def test_wrong_content_type_and_path(server):
    resp = post(server, "/v1/act", b"{}", content_type="application/json")
    assert resp.status_code == 415 and "application/msgpack" in error_of(resp)["message"]
    resp = httpx.get(server.address + "/v1/nothing", headers=server.headers())
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"


def test_duplicate_batch_counts_once(server):
    before = server.metric("agentsdk_steps_ingested_total")
    body = encode({"batch_id": "dup-" + uuid.uuid4().hex, "client_id": "t", "chunks": [chunk(7)]})
    first, second = (decode(post(server, "/v1/experience", body).content) for _ in range(2))
    assert first["accepted_steps"] == 7 and first["duplicate"] is False
    assert second["accepted_steps"] == 0 and second["duplicate"] is True
    assert server.metric("agentsdk_steps_ingested_total") == before + 7


def test_server_still_serves_after_abuse(server, tmp_path):
    before = server.metric("agentsdk_requests_rejected_total")
    abuse = [
        (post(server, "/v1/act", pickle.dumps(Exploit(str(tmp_path / "pwned")))), 400),
        (post(server, "/v1/experience", b"\x00" * 300_000), 413),
        (post(server, "/v1/act", encode(good_obs()), token="wrong"), 401),
        (post(server, "/v1/act", encode(good_obs()), protocol="9.0"), 400),
        (post(server, "/v1/act", encode({"observations": np.zeros((1, 3), np.float32)})), 422),
    ]
    assert [resp.status_code for resp, _ in abuse] == [status for _, status in abuse]
    assert server.metric("agentsdk_requests_rejected_total") == before + len(abuse)  # each 4xx counted once
    resp = post(server, "/v1/act", encode(good_obs()))
    assert resp.status_code == 200, resp.content
    answer = decode(resp.content)
    assert answer["actions"].shape == (1,) and answer["logp"].dtype == np.float32
    assert server.proc.poll() is None
    assert not (tmp_path / "pwned").exists()
    assert server.metric("agentsdk_requests_rejected_total") == before + len(abuse)  # the good request is not


def test_policy_long_poll_waits_then_answers_304(server):
    import time

    etag = httpx.get(server.address + "/v1/policy", headers=server.headers()).headers["etag"]
    assert etag.startswith('"v0-')
    headers = {**server.headers(), "If-None-Match": etag}
    assert httpx.get(server.address + "/v1/policy", headers=headers).status_code == 304
    start = time.monotonic()
    resp = httpx.get(server.address + "/v1/policy", headers={**headers, "Agentsdk-Wait": "1.5"}, timeout=10)
    assert resp.status_code == 304 and time.monotonic() - start >= 1.4
    resp = httpx.get(server.address + "/v1/policy", headers={**headers, "Agentsdk-Wait": "soon"})
    assert resp.status_code == 400 and "Agentsdk-Wait" in error_of(resp)["message"]


def test_bad_server_options_fail_fast_with_a_message():
    import subprocess
    import sys

    for args, needle in (
        (["--env", "CartPole-v1", "--algo", "NOPE"], "is not supported; use one of"),
        ([], "give --env"),
        (
            [
                "--observation-space",
                '{"type": "Discrete", "n": 3}',
                "--action-space",
                '{"type": "Tuple", "spaces": [{"type": "Discrete", "n": 2}]}',
            ],
            "cannot be trained yet",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "agentsdk.cli", "serve", *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0 and needle in done.stderr + done.stdout, (args, done.stderr)
