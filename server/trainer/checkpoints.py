"""Checkpoints in ``--checkpoint-dir``: RLlib's own, swapped in atomically, plus the policy version.

A kill mid-save keeps the previous checkpoint: the new one is written to a
fresh folder and renamed into place. ``agentsdk.json`` beside RLlib's files
holds the policy version the checkpoint resumes at, readable without Ray.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CHECKPOINT_SUBDIR = "checkpoint"
CHECKPOINT_INFO = "agentsdk.json"
POLICY_FILE = "policy.onnx"


def latest_checkpoint(checkpoint_dir: str | None) -> Path | None:
    if not checkpoint_dir:
        return None
    path = Path(checkpoint_dir).resolve() / CHECKPOINT_SUBDIR
    return path if (path / "rllib_checkpoint.json").exists() else None


def save_checkpoint(algo, checkpoint_dir: str) -> Path:
    """Write to a fresh folder, then swap it in: a kill mid-save keeps the old one."""
    root = Path(checkpoint_dir).resolve()  # RLlib (pyarrow) wants absolute paths
    root.mkdir(parents=True, exist_ok=True)
    tmp, final, old = (
        root / (CHECKPOINT_SUBDIR + ".tmp"),
        root / CHECKPOINT_SUBDIR,
        root / (CHECKPOINT_SUBDIR + ".old"),
    )
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp))
    (tmp / CHECKPOINT_INFO).write_text(json.dumps({"policy_version": algo.iteration}) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def policy_file(policy_id: str | None = None) -> str:
    """``policy.onnx`` for a server's one policy, ``policy.<policy_id>.onnx`` for each of several."""
    return POLICY_FILE if policy_id is None else f"policy.{policy_id}.onnx"


def write_policy(checkpoint_dir: str, onnx_bytes: bytes, policy_id: str | None = None) -> None:
    """The newest exported policy as ``policy_file(policy_id)``, replaced atomically."""
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = policy_file(policy_id)
    tmp = root / (name + ".tmp")
    tmp.write_bytes(onnx_bytes)
    tmp.replace(root / name)
