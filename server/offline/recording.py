"""The recording format: RLlib's offline column format, plus one JSON file naming the spaces.

A recording is a directory of data files with one row per step and RLlib's
default column names (``ray.rllib.core.columns.Columns``, the ``SCHEMA`` of
``ray/rllib/offline/offline_prelearner.py``), so ``config.offline_data(input_=[DIR])``
reads it as it is, plus ``agentsdk_recording.json`` with the wire spaces: the
flat ``obs`` and the policy-form ``actions`` only mean something with them.

Two writers: the server's front (``agentsdk serve --record``: Parquet,
``front/recorder.py``) and the client's log-only ``Recorder`` (JSON lines,
``agentsdk_client/_recorder.py``, which has no pyarrow and so repeats the names
below; ``tests/test_offline.py`` checks that both agree).

This module needs pyarrow only, never Ray or torch: the front imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsdk_client.protocol.constants import PROTOCOL_VERSION, major
from agentsdk_client.protocol.policy_form import policy_action_layout
from agentsdk_client.protocol.spaces import Space, SpaceError
from agentsdk_client.protocol.spec import space_from_json, space_to_json

METADATA_FILE = "agentsdk_recording.json"
FORMAT = "agentsdk-recording"
FORMAT_VERSION = 1

# One row per step. The first ten are RLlib's own names (SCHEMA / Columns); ``obs`` and
# ``new_obs`` are the flat float32 observation the policy sees, ``actions`` the policy form.
COLUMNS = (
    "eps_id",  # one per (client, episode, agent): RLlib's episode id
    "agent_id",
    "t",  # the step's index in its episode
    "obs",
    "actions",
    "rewards",
    "new_obs",
    "terminateds",
    "truncateds",
    "action_logp",  # the behaviour policy's log-prob of the action (null: unknown)
    "policy_version",  # the policy version that acted (-1: the app's own logic, no policy)
    "client_id",
)
# Columns RLlib would hand to the learner as extra model outputs; training does not use them.
EXTRA_COLUMNS = ("action_logp", "policy_version", "client_id")

STORAGE_SUFFIX = {"parquet": ".parquet", "json": ".jsonl"}


class RecordingError(ValueError):
    """A directory is not a recording (or not one that fits); the message names the fix."""


@dataclass(frozen=True)
class Recording:
    path: Path
    observation_space: Space
    action_space: Space
    storage: str
    """"parquet" (the server's --record) or "json" (the client's Recorder)."""
    algorithm: str | None
    """The server's algorithm while recording; None for the client's log-only Recorder."""
    protocol: str

    def files(self) -> list[Path]:
        """The data files, oldest first (files being written are hidden and not listed)."""
        return sorted(p for p in self.path.glob(f"*{STORAGE_SUFFIX[self.storage]}") if p.is_file())

    def describe(self) -> str:
        return f"observations {self.observation_space!r}, actions {self.action_space!r}"


def metadata(
    observation_space: Space, action_space: Space, storage: str, algorithm: str | None, writer: str
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "protocol": PROTOCOL_VERSION,
        "storage": storage,
        "algorithm": algorithm,
        "writer": writer,
        "observation_space": space_to_json(observation_space),
        "action_space": space_to_json(action_space),
        "flat_obs_size": observation_space.flat_size,
        "columns": list(COLUMNS),
    }


def start_recording(
    directory: str | Path,
    observation_space: Space,
    action_space: Space,
    storage: str,
    algorithm: str | None,
    writer: str,
) -> Path:
    """Create ``directory`` (or continue a recording of the same spaces there) and write its metadata."""
    path = Path(directory)
    meta_file = path / METADATA_FILE
    if meta_file.exists():
        old = open_recording(path)
        if (old.observation_space, old.action_space, old.storage) != (
            observation_space,
            action_space,
            storage,
        ):
            raise RecordingError(
                f"{path} already holds a {old.storage} recording of {old.describe()}; "
                f"record {storage} of observations {observation_space!r}, actions {action_space!r} "
                "into another directory"
            )
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / f".{METADATA_FILE}.tmp"
        tmp.write_text(json.dumps(metadata(observation_space, action_space, storage, algorithm, writer)))
        tmp.replace(meta_file)
    except OSError as exc:
        raise RecordingError(f"cannot write a recording to {path}: {exc}") from exc
    return path


def open_recording(directory: str | Path) -> Recording:
    """The recording in ``directory``; RecordingError naming what is wrong otherwise."""
    path = Path(directory)
    meta_file = path / METADATA_FILE
    if not meta_file.is_file():
        raise RecordingError(
            f"{path} is not an agentsdk recording (no {METADATA_FILE}); record one with "
            "`agentsdk serve --record DIR` or the client's Recorder"
        )
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        if meta.get("storage") not in STORAGE_SUFFIX:
            raise ValueError(f"storage is {meta.get('storage')!r}, expected parquet or json")
        obs_space = space_from_json(meta.get("observation_space"), "observation_space")
        act_space = space_from_json(meta.get("action_space"), "action_space")
    except (OSError, ValueError) as exc:  # SpaceError included
        raise RecordingError(f"{meta_file} is not a valid recording description: {exc}") from exc
    protocol = str(meta.get("protocol", ""))
    if major(protocol) != major(PROTOCOL_VERSION):
        raise RecordingError(
            f"{path} was recorded with agentsdk protocol {protocol}, this agentsdk speaks {PROTOCOL_VERSION}; "
            "use an agentsdk of the recording's major version"
        )
    return Recording(path, obs_space, act_space, meta["storage"], meta.get("algorithm"), protocol)


def arrow_schema(observation_space: Space, action_space: Space) -> Any:
    """The Arrow schema of a recording's rows (Parquet files, and the JSON reader's explicit schema)."""
    import pyarrow as pa

    try:
        dtype, shape, _ = policy_action_layout(action_space)
    except SpaceError as exc:
        raise RecordingError(f"cannot record actions of {action_space!r}: {exc}") from exc
    scalar = pa.float32() if dtype.kind == "f" else pa.int64()
    actions = scalar if shape == () else pa.list_(scalar)
    flat = pa.list_(pa.float32())
    return pa.schema(
        [
            ("eps_id", pa.string()),
            ("agent_id", pa.string()),
            ("t", pa.int64()),
            ("obs", flat),
            ("actions", actions),
            ("rewards", pa.float32()),
            ("new_obs", flat),
            ("terminateds", pa.bool_()),
            ("truncateds", pa.bool_()),
            ("action_logp", pa.float32()),
            ("policy_version", pa.int64()),
            ("client_id", pa.string()),
        ]
    )


def read_table(recording: Recording) -> Any:
    """Every row of a recording as one Arrow table (for tools that read it without Ray)."""
    import pyarrow as pa
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    schema = arrow_schema(recording.observation_space, recording.action_space)
    files = recording.files()
    if not files:
        raise RecordingError(
            f"{recording.path} holds no data yet (no *{STORAGE_SUFFIX[recording.storage]} files)"
        )
    try:
        if recording.storage == "parquet":
            tables = [pq.read_table(f, schema=schema) for f in files]
        else:
            options = pa_json.ParseOptions(explicit_schema=schema)
            tables = [pa_json.read_json(f, parse_options=options).select(list(COLUMNS)) for f in files]
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(f"cannot read {recording.path}: {exc}") from exc
    return pa.concat_tables(tables)
