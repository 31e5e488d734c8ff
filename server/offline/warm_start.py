"""``agentsdk serve --init-from CHECKPOINT``: online training starts from an offline run's weights.

The apprentice path: BC on the app's own logic (``agentsdk train --offline``),
then PPO improves on it. It runs in the trainer process, right after the
Algorithm is built, and uses RLlib's own way: ``Algorithm.restore_from_path``
on the checkpoint's RLModule component, which also syncs the weights to the
env runner (so the first exported policy is the offline one).

RLlib loads module weights by name and skips names it does not know, so a
checkpoint of another architecture would "load" without changing anything.
Hence the checks around it: every weight the online policy acts with must be in
the checkpoint with the same shape before, and equal after.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .train import CHECKPOINT, module_path


class WarmStartError(ValueError):
    """The checkpoint cannot start this server's algorithm; the message names the problem and the fix."""


def find_module(path: str | Path) -> Path:
    """The RLModule directory of OUT (``agentsdk train --out``), of an algorithm checkpoint, or itself."""
    path = Path(path)
    for candidate in (module_path(path / CHECKPOINT), module_path(path), path):
        if (candidate / "class_and_ctor_args.pkl").is_file():
            return candidate
    raise WarmStartError(
        f"no RLlib checkpoint at {path} (expected {module_path(path)}); write one with "
        "`agentsdk train --offline DIR --out OUT` and pass OUT/checkpoint"
    )


def warm_start(algo, path: str | Path) -> Path:
    """Load the checkpoint's module weights into ``algo`` (learner and env runner); the module dir used."""
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )
    from ray.rllib.core.rl_module.rl_module import RLModule

    module_dir = find_module(path)
    try:
        source = RLModule.from_checkpoint(str(module_dir))
    except Exception as exc:  # a corrupt or foreign checkpoint: say what RLlib said, in one line
        raise WarmStartError(
            f"cannot read the RLModule in {module_dir}: {type(exc).__name__}: {exc}"
        ) from exc
    weights = _numpy(source.get_state())
    acting = algo.get_module()  # what the exported policy is made of
    _check_fits(weights, _numpy(acting.get_state()), type(source).__name__, algo.config.algo_class.__name__)
    algo.restore_from_path(
        str(module_dir),
        component=f"{COMPONENT_LEARNER_GROUP}/{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{DEFAULT_MODULE_ID}",
    )
    loaded = _numpy(algo.get_module().get_state())
    differ = [k for k, v in loaded.items() if not np.array_equal(v, weights[k])]
    if differ:
        raise WarmStartError(
            f"the weights of {module_dir} did not reach the policy ({', '.join(differ[:3])})"
        )
    return module_dir


def _check_fits(weights: dict, acting: dict, source_name: str, algo_name: str) -> None:
    missing = [k for k in acting if k not in weights]
    wrong = [
        f"{k} {weights[k].shape} vs {v.shape}"
        for k, v in acting.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or wrong:
        what = f"missing {', '.join(missing[:3])}" if missing else f"shapes differ: {', '.join(wrong[:3])}"
        raise WarmStartError(
            f"the checkpoint's {source_name} does not fit this server's {algo_name} policy ({what}); "
            "train offline on a recording of the same spaces, with the same model_config "
            "(BC or MARWIL start PPO, APPO, IMPALA; CQL starts SAC)"
        )


def _numpy(state: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in state.items()}
