"""Space specs: the wire form (msgpack, arrays as ndarrays) and the JSON form.

``space_from_spec`` builds a Space from what came off the wire and rejects
anything malformed. The JSON form is used where msgpack is not: the ONNX
contract (arrays as ``{"dtype", "shape", "values"}``, non-finite floats as
strings) and specs typed on a command line or in a config file, where bounds
may also be plain numbers or lists (``{"type": "Box", "low": -1, "high": 1,
"shape": [3]}``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .codec import DTYPES
from .spaces import Box, Dict, Discrete, MultiBinary, MultiDiscrete, Space, SpaceError, Tuple


def _shape(value: Any, path: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise SpaceError("must be a list of non-negative ints", path)
    return tuple(value)


def _dtype(value: Any, path: str) -> np.dtype:
    if not isinstance(value, str) or value not in DTYPES:
        raise SpaceError(f"dtype {value!r} is not one of {', '.join(DTYPES)}", path)
    return np.dtype(value)


def _int(value: Any, path: str, minimum: int = 0) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise SpaceError(f"must be an integer >= {minimum}, got {value!r}", path)
    return int(value)


MAX_SPACE_DEPTH = 8


def space_from_spec(spec: Any, path: str = "space", depth: int = 0) -> Space:
    """Build a Space from its wire spec, rejecting anything malformed."""
    if depth > MAX_SPACE_DEPTH:
        raise SpaceError(f"spaces may nest at most {MAX_SPACE_DEPTH} deep", path)
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise SpaceError("a space spec must be a map with a 'type'", path)
    kind = spec["type"]
    try:
        if kind == "Box":
            dtype = _dtype(spec.get("dtype"), f"{path}.dtype")
            if dtype.kind not in "fiu":
                raise SpaceError("Box dtype must be a float or int type", f"{path}.dtype")
            shape = _shape(spec.get("shape"), f"{path}.shape")
            low, high = spec.get("low"), spec.get("high")
            for name, bound in (("low", low), ("high", high)):
                if not isinstance(bound, np.ndarray) or bound.shape != shape:
                    raise SpaceError(f"must be an array of shape {list(shape)}", f"{path}.{name}")
            return Box(low, high, shape, dtype)
        if kind == "Discrete":
            return Discrete(_int(spec.get("n"), f"{path}.n", 1), int(spec.get("start", 0)))
        if kind == "MultiDiscrete":
            nvec = spec.get("nvec")
            if not isinstance(nvec, np.ndarray) or nvec.dtype.kind not in "iu":
                raise SpaceError("must be an int64 array", f"{path}.nvec")
            return MultiDiscrete(nvec, spec.get("start"))
        if kind == "MultiBinary":
            return MultiBinary(_shape(spec.get("shape"), f"{path}.shape"))
        if kind == "Dict":
            items = spec.get("spaces")
            if not isinstance(items, list) or not all(
                isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) for i in items
            ):
                raise SpaceError("must be a list of [key, space] pairs", f"{path}.spaces")
            return Dict([(k, space_from_spec(s, f"{path}.{k}", depth + 1)) for k, s in items])
        if kind == "Tuple":
            items = spec.get("spaces")
            if not isinstance(items, list):
                raise SpaceError("must be a list of spaces", f"{path}.spaces")
            return Tuple([space_from_spec(s, f"{path}[{i}]", depth + 1) for i, s in enumerate(items)])
    except SpaceError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpaceError(str(exc), path) from exc
    raise SpaceError(
        f"unknown space type {kind!r}; expected Box, Discrete, MultiDiscrete, MultiBinary, Dict or Tuple",
        path,
    )


# -- spec <-> JSON (for the ONNX contract, where arrays become plain lists) ------------


def _json_number(x: float) -> Any:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


def spec_to_json(spec: Any) -> Any:
    """A wire spec with arrays written as {"dtype", "shape", "values"} (non-finite as strings)."""
    if isinstance(spec, np.ndarray):
        return {
            "dtype": spec.dtype.name,
            "shape": list(spec.shape),
            "values": [_json_number(float(v)) if spec.dtype.kind == "f" else int(v) for v in spec.ravel()],
        }
    if isinstance(spec, dict):
        return {k: spec_to_json(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [spec_to_json(v) for v in spec]
    return spec


def spec_from_json(spec: Any) -> Any:
    if isinstance(spec, dict) and set(spec) == {"dtype", "shape", "values"}:
        values = [float(v) if isinstance(v, str) else v for v in spec["values"]]
        return np.asarray(values, dtype=spec["dtype"]).reshape(spec["shape"])
    if isinstance(spec, dict):
        return {k: spec_from_json(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [spec_from_json(v) for v in spec]
    return spec


def space_to_json(space: Space) -> dict[str, Any]:
    """A space in the JSON form (the ONNX contract's)."""
    return spec_to_json(space.to_spec())


def _json_arrays(node: Any) -> Any:
    """Plain numbers and lists where a spec wants arrays (Box bounds, nvec) -> ndarrays."""
    if isinstance(node, list):
        return [_json_arrays(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_arrays(v) for k, v in node.items()}
    if out.get("type") == "Box":
        dtype = out.setdefault("dtype", "float32")
        if dtype not in DTYPES:
            raise SpaceError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}", "dtype")
        shape = out.get("shape")
        if shape is None:
            shape = list(np.shape(out.get("low", 0)))
            out["shape"] = shape
        for name in ("low", "high"):
            if name not in out:
                raise SpaceError("required for a Box", name)
            try:
                out[name] = np.broadcast_to(np.asarray(out[name], dtype), shape).copy()
            except (TypeError, ValueError) as exc:
                raise SpaceError(f"cannot be read as {dtype} values of shape {shape}: {exc}", name) from exc
    if out.get("type") == "MultiDiscrete":
        for name in ("nvec", "start"):
            if name in out and not isinstance(out[name], np.ndarray):
                out[name] = np.asarray(out[name], np.int64)
    return out


def space_from_json(value: Any, path: str = "space") -> Space:
    """A space from its JSON form: the contract's, or one written by hand with plain bounds."""
    try:
        return space_from_spec(_json_arrays(spec_from_json(value)), path)
    except SpaceError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise SpaceError(f"not a space spec: {exc}", path) from exc
