"""The one config parser (agentsdk_server.config): every source, every malformed value a named error.

Fast: no server process, no Ray. The two CLI cases run ``python -m agentsdk.cli
serve`` with a bad value, which must stop with one line before anything starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentsdk_server.config import (
    FALSE_WORDS,
    TRUE_WORDS,
    ConfigError,
    ServerConfig,
    env_var,
    fields,
    load_config,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AGENTSDK_* variable from the caller's environment leaks into a case."""
    for f in fields():
        monkeypatch.delenv(env_var(f.name), raising=False)
    monkeypatch.delenv("AGENTSDK_CONFIG", raising=False)


def write_config(tmp_path: Path, data: object) -> str:
    path = tmp_path / "server.json"
    path.write_text(json.dumps(data))
    return str(path)


# -- the environment ----------------------------------------------------------------------------


def test_misspelt_boolean_in_the_environment_is_an_error_listing_the_accepted_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTSDK_RESUME", "ture")
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert "AGENTSDK_RESUME" in message
    assert "ture" in message
    for word in TRUE_WORDS + FALSE_WORDS:
        assert word in message


@pytest.mark.parametrize(
    ("text", "expected"), [("yes", True), ("0", False), ("TRUE", True), (" off ", False)]
)
def test_boolean_words_in_the_environment(monkeypatch: pytest.MonkeyPatch, text: str, expected: bool) -> None:
    monkeypatch.setenv("AGENTSDK_RESUME", text)
    assert load_config().resume is expected


def test_non_integer_port_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSDK_PORT", "abc")
    with pytest.raises(ConfigError, match=r"AGENTSDK_PORT.*integer"):
        load_config()


@pytest.mark.parametrize(("text", "why"), [("65536", "at most 65535"), ("-1", "at least 0")])
def test_port_out_of_range(monkeypatch: pytest.MonkeyPatch, text: str, why: str) -> None:
    monkeypatch.setenv("AGENTSDK_PORT", text)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "AGENTSDK_PORT" in str(info.value)
    assert why in str(info.value)


def test_port_out_of_range_on_the_command_line_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--port.*65535"):
        load_config(cli={"port": "99999"})


def test_training_as_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSDK_TRAINING", '{"lr": 0.0003}')
    assert load_config().training == {"lr": 0.0003}
    monkeypatch.setenv("AGENTSDK_TRAINING", "[1, 2]")
    with pytest.raises(ConfigError, match=r"AGENTSDK_TRAINING.*JSON object"):
        load_config()


# -- the config file ----------------------------------------------------------------------------


def test_unknown_key_in_the_config_file_is_named(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"port": 9000, "prot": 9001})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "prot" in str(info.value)
    assert path in str(info.value)


# Bug: parse_value converts any string for a non-string option, the config file's JSON values included,
# so {"port": "9000"} is silently port 9000 (see the helper's report). Drop the marker once fixed.
def test_string_where_the_config_file_needs_an_integer_names_file_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"port": "9000"})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert path in str(info.value)
    assert "port" in str(info.value)


def test_wrong_json_type_in_the_config_file_names_file_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"resume": 1})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert path in str(info.value)
    assert "resume" in str(info.value)


def test_config_file_that_is_not_a_json_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(write_config(tmp_path, [1, 2]))
    broken = tmp_path / "broken.json"
    broken.write_text("{port: 9000")
    with pytest.raises(ConfigError, match="cannot read it as JSON"):
        load_config(str(broken))


def test_training_section_in_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, {"env": "CartPole-v1", "training": {"lr": 0.001}}))
    assert cfg.training == {"lr": 0.001}
    assert cfg.env == "CartPole-v1"


# -- precedence ---------------------------------------------------------------------------------


def test_defaults_then_file_then_environment_then_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = ServerConfig()
    assert load_config().port == defaults.port == 9900  # nothing given: the defaults
    path = write_config(tmp_path, {"port": 9000, "checkpoint_every": 20, "log_every": 1.5})
    assert load_config(path).port == 9000  # the file beats the default
    monkeypatch.setenv("AGENTSDK_PORT", "9002")
    monkeypatch.setenv("AGENTSDK_CHECKPOINT_EVERY", "30")
    assert load_config(path).port == 9002  # the environment beats the file
    cfg = load_config(path, cli={"port": "9001", "seed": None})
    assert cfg.port == 9001  # the command line beats the environment
    assert cfg.checkpoint_every == 30  # the environment beats the file
    assert cfg.log_every == 1.5  # the file beats the default
    assert cfg.seed is defaults.seed is None  # an option the command line did not give keeps its default
    assert cfg.host == defaults.host


# -- the command line, end to end ---------------------------------------------------------------


def run_serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTSDK_")}
    return subprocess.run(
        [sys.executable, "-m", "agentsdk.cli", "serve", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0]


def test_cli_rejects_a_malformed_port_in_one_line() -> None:
    assert_one_line_error(run_serve("--port", "notaport"), "--port", "notaport", "integer")


def test_cli_rejects_a_misspelt_boolean_in_the_environment_in_one_line() -> None:
    assert_one_line_error(run_serve(AGENTSDK_RESUME="ture"), "AGENTSDK_RESUME", "ture")


def test_cli_config_error_imports_neither_ray_nor_torch() -> None:
    """Rejecting a bad value starts nothing heavy: the process never imported Ray or torch."""
    code = (
        "import sys\nfrom agentsdk.cli import main\nrc = main(['serve', '--port', 'notaport'])\n"
        "print(rc, sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.split() == ["2", "[]"], result.stdout + result.stderr
