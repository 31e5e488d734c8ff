"""Observation and action spaces: the classes, their checks and flattening.

PROTOCOL.md section "Spaces" is the authority. A *value* of a space is what the
app hands over (an observation) or gets back (an action); a *batch* is values
stacked along a new first axis (Dict batches are dicts of batches, Tuple
batches are lists of batches). Everything the server and the clients check
about a value lives here, so both sides say the same thing about a bad one.

``flatten_batch`` turns an observation batch into float32 ``[N, flat_size]``
(one-hot for discrete parts), which is what the policy network sees. Specs
(wire and JSON) are in ``spec``; the policy form of actions in ``policy_form``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SpaceError(ValueError):
    """A space spec or a value does not fit; ``path`` names the field."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


def _describe(array: Any) -> str:
    if isinstance(array, np.ndarray):
        return f"an array of shape {array.shape} and dtype {array.dtype}"
    return f"a {type(array).__name__}"


def _fmt(x: float) -> str:
    return f"{x:g}"


class Space:
    """Base class. Subclasses are small: spec, checks, flattening."""

    flat_size: int

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def check_batch(self, batch: Any, n: int, path: str) -> Any:
        """Strict check of a batch that came off the wire (exact dtypes)."""
        raise NotImplementedError

    def coerce(self, value: Any, path: str) -> Any:
        """Turn an app's value into this space's canonical value, or say why not."""
        raise NotImplementedError

    def stack(self, values: Sequence[Any]) -> Any:
        raise NotImplementedError

    def unstack(self, batch: Any, n: int) -> list[Any]:
        raise NotImplementedError

    def flatten_batch(self, batch: Any, n: int) -> np.ndarray:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        from .codec import encode

        return isinstance(other, Space) and encode(self.to_spec()) == encode(other.to_spec())

    def __hash__(self) -> int:
        return hash(repr(self))


class _ArraySpace(Space):
    """Shared by the spaces whose values are one numpy array of fixed shape."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def _check_array(self, batch: Any, n: int, path: str) -> np.ndarray:
        want = (n, *self.shape)
        if not isinstance(batch, np.ndarray) or batch.dtype != self.dtype or batch.shape != want:
            raise SpaceError(
                f"expected an array of shape {list(want)} and dtype {self.dtype}, got "
                f"{_describe(batch)} (space {self!r})",
                path,
            )
        return batch

    def coerce(self, value: Any, path: str) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype != self.dtype:
            if array.dtype == object or not np.can_cast(array.dtype, self.dtype, "same_kind"):
                raise SpaceError(
                    f"expected dtype {self.dtype} (space {self!r}), got {_describe(array)}", path
                )
            array = array.astype(self.dtype)
        if array.shape != self.shape:
            raise SpaceError(f"expected shape {self.shape} (space {self!r}), got {_describe(array)}", path)
        self._check_values(array[None], path)
        return array

    def _check_values(self, batch: np.ndarray, path: str) -> None:
        pass

    def stack(self, values: Sequence[Any]) -> np.ndarray:
        if not values:
            return np.zeros((0, *self.shape), self.dtype)
        return np.stack(values).astype(self.dtype, copy=False)

    def unstack(self, batch: np.ndarray, n: int) -> list[Any]:
        return list(batch)


class Box(_ArraySpace):
    def __init__(
        self, low: Any, high: Any, shape: Sequence[int] | None = None, dtype: Any = np.float32
    ) -> None:
        self.dtype = np.dtype(dtype)
        if shape is None:
            shape = np.shape(low) if np.ndim(low) else np.shape(high)
        self.shape = tuple(int(d) for d in shape)
        self.low = np.broadcast_to(np.asarray(low, self.dtype), self.shape).copy()
        self.high = np.broadcast_to(np.asarray(high, self.dtype), self.shape).copy()
        if np.any(self.low > self.high):
            raise SpaceError("Box low must not exceed high")
        self.flat_size = int(np.prod(self.shape, dtype=np.int64))
        self.bounded = bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))
        self._any_bound = bool(np.any(np.isfinite(self.low)) or np.any(np.isfinite(self.high)))

    def __repr__(self) -> str:
        lo = _fmt(float(self.low.min())) if self.low.size else "-"
        hi = _fmt(float(self.high.max())) if self.high.size else "-"
        return f"Box({lo}, {hi}, {self.shape}, {self.dtype})"

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "Box",
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "low": self.low,
            "high": self.high,
        }

    def check_batch(self, batch: Any, n: int, path: str) -> np.ndarray:
        self._check_values(self._check_array(batch, n, path), path)
        return batch

    def _check_values(self, batch: np.ndarray, path: str) -> None:
        if self.dtype.kind == "f" and not self._any_bound:
            if not np.isfinite(batch).all() and np.isnan(batch).any():
                raise SpaceError(f"contains NaN (space {self!r})", path)
            return
        bad = ~((batch >= self.low) & (batch <= self.high))
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            value = batch[index]
            raise SpaceError(
                f"value {value} at index {list(index)} is outside the bounds "
                f"[{self.low[index[1:]]}, {self.high[index[1:]]}] of {self!r}",
                path,
            )

    def flatten_batch(self, batch: np.ndarray, n: int) -> np.ndarray:
        return batch.reshape(n, self.flat_size).astype(np.float32, copy=False)


class Discrete(Space):
    dtype = np.dtype(np.int64)

    def __init__(self, n: int, start: int = 0) -> None:
        self.n = int(n)
        self.start = int(start)
        if self.n < 1:
            raise SpaceError("Discrete n must be at least 1")
        self.flat_size = self.n

    def __repr__(self) -> str:
        return f"Discrete({self.n})" if self.start == 0 else f"Discrete({self.n}, start={self.start})"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "Discrete", "n": self.n, "start": self.start}

    def check_batch(self, batch: Any, n: int, path: str) -> np.ndarray:
        if not isinstance(batch, np.ndarray) or batch.dtype != self.dtype or batch.shape != (n,):
            raise SpaceError(
                f"expected an array of shape [{n}] and dtype int64, got {_describe(batch)} (space {self!r})",
                path,
            )
        bad = (batch < self.start) | (batch >= self.start + self.n)
        if bad.any():
            raise SpaceError(f"value {int(batch[bad][0])} is not in {self!r}", path)
        return batch

    def coerce(self, value: Any, path: str) -> int:
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
            value = int(value)
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise SpaceError(f"expected an int in {self!r}, got {_describe(value)}", path)
        if not self.start <= value < self.start + self.n:
            raise SpaceError(f"value {int(value)} is not in {self!r}", path)
        return int(value)

    def stack(self, values: Sequence[Any]) -> np.ndarray:
        return np.asarray(values, dtype=np.int64).reshape(len(values))

    def unstack(self, batch: np.ndarray, n: int) -> list[Any]:
        return [int(v) for v in batch]

    def flatten_batch(self, batch: np.ndarray, n: int) -> np.ndarray:
        out = np.zeros((n, self.n), np.float32)
        out[np.arange(n), batch - self.start] = 1.0
        return out


class MultiDiscrete(_ArraySpace):
    dtype = np.dtype(np.int64)

    def __init__(self, nvec: Any, start: Any = None) -> None:
        self.nvec = np.asarray(nvec, np.int64)
        self.shape = self.nvec.shape
        self.start = (
            np.zeros_like(self.nvec)
            if start is None
            else np.broadcast_to(np.asarray(start, np.int64), self.shape).copy()
        )
        if self.nvec.size == 0 or np.any(self.nvec < 1):
            raise SpaceError("MultiDiscrete nvec must be non-empty and every entry >= 1")
        self.flat_size = int(self.nvec.sum())

    def __repr__(self) -> str:
        return f"MultiDiscrete({self.nvec.tolist()})"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "MultiDiscrete", "nvec": self.nvec, "start": self.start}

    def check_batch(self, batch: Any, n: int, path: str) -> np.ndarray:
        self._check_values(self._check_array(batch, n, path), path)
        return batch

    def _check_values(self, batch: np.ndarray, path: str) -> None:
        bad = (batch < self.start) | (batch >= self.start + self.nvec)
        if bad.any():
            index = [int(i) for i in np.argwhere(bad)[0]]
            raise SpaceError(f"value {int(batch[tuple(index)])} at index {index} is not in {self!r}", path)

    def flatten_batch(self, batch: np.ndarray, n: int) -> np.ndarray:
        out = np.zeros((n, self.flat_size), np.float32)
        offsets = np.concatenate([[0], np.cumsum(self.nvec.ravel())[:-1]])
        cols = (batch.reshape(n, -1) - self.start.ravel()) + offsets
        out[np.arange(n)[:, None], cols] = 1.0
        return out


class MultiBinary(_ArraySpace):
    dtype = np.dtype(np.int8)

    def __init__(self, n: int | Sequence[int]) -> None:
        self.shape = (int(n),) if isinstance(n, (int, np.integer)) else tuple(int(d) for d in n)
        self.flat_size = int(np.prod(self.shape, dtype=np.int64))
        if self.flat_size < 1:
            raise SpaceError("MultiBinary needs at least one element")

    def __repr__(self) -> str:
        return f"MultiBinary({list(self.shape)})"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "MultiBinary", "shape": list(self.shape)}

    def check_batch(self, batch: Any, n: int, path: str) -> np.ndarray:
        self._check_values(self._check_array(batch, n, path), path)
        return batch

    def _check_values(self, batch: np.ndarray, path: str) -> None:
        if ((batch != 0) & (batch != 1)).any():
            raise SpaceError(f"values must be 0 or 1 (space {self!r})", path)

    def flatten_batch(self, batch: np.ndarray, n: int) -> np.ndarray:
        return batch.reshape(n, self.flat_size).astype(np.float32)


class Dict(Space):
    def __init__(self, spaces: Sequence[tuple[str, Space]] | dict[str, Space]) -> None:
        items = list(spaces.items()) if isinstance(spaces, dict) else list(spaces)
        if not items:
            raise SpaceError("Dict needs at least one sub-space")
        self.spaces: dict[str, Space] = dict(items)
        self.flat_size = sum(s.flat_size for s in self.spaces.values())

    def __repr__(self) -> str:
        return "Dict(" + ", ".join(f"{k!r}: {s!r}" for k, s in self.spaces.items()) + ")"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "Dict", "spaces": [[k, s.to_spec()] for k, s in self.spaces.items()]}

    def _check_keys(self, value: Any, path: str) -> None:
        if not isinstance(value, dict) or set(value) != set(self.spaces):
            got = sorted(value) if isinstance(value, dict) else _describe(value)
            raise SpaceError(f"expected a map with keys {list(self.spaces)}, got {got}", path)

    def check_batch(self, batch: Any, n: int, path: str) -> dict[str, Any]:
        self._check_keys(batch, path)
        return {k: s.check_batch(batch[k], n, f"{path}.{k}") for k, s in self.spaces.items()}

    def coerce(self, value: Any, path: str) -> dict[str, Any]:
        self._check_keys(value, path)
        return {k: s.coerce(value[k], f"{path}.{k}") for k, s in self.spaces.items()}

    def stack(self, values: Sequence[Any]) -> dict[str, Any]:
        return {k: s.stack([v[k] for v in values]) for k, s in self.spaces.items()}

    def unstack(self, batch: Any, n: int) -> list[Any]:
        parts = {k: s.unstack(batch[k], n) for k, s in self.spaces.items()}
        return [{k: parts[k][i] for k in self.spaces} for i in range(n)]

    def flatten_batch(self, batch: Any, n: int) -> np.ndarray:
        return np.concatenate([s.flatten_batch(batch[k], n) for k, s in self.spaces.items()], axis=1)


class Tuple(Space):
    def __init__(self, spaces: Sequence[Space]) -> None:
        self.spaces = list(spaces)
        if not self.spaces:
            raise SpaceError("Tuple needs at least one sub-space")
        self.flat_size = sum(s.flat_size for s in self.spaces)

    def __repr__(self) -> str:
        return "Tuple(" + ", ".join(repr(s) for s in self.spaces) + ")"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "Tuple", "spaces": [s.to_spec() for s in self.spaces]}

    def _check_len(self, value: Any, path: str) -> None:
        if not isinstance(value, (list, tuple)) or len(value) != len(self.spaces):
            raise SpaceError(
                f"expected a list of {len(self.spaces)} items, got {_describe(value)}"
                + (f" of length {len(value)}" if isinstance(value, (list, tuple)) else ""),
                path,
            )

    def check_batch(self, batch: Any, n: int, path: str) -> list[Any]:
        self._check_len(batch, path)
        return [
            s.check_batch(b, n, f"{path}[{i}]")
            for i, (s, b) in enumerate(zip(self.spaces, batch, strict=True))
        ]

    def coerce(self, value: Any, path: str) -> tuple[Any, ...]:
        self._check_len(value, path)
        return tuple(
            s.coerce(v, f"{path}[{i}]") for i, (s, v) in enumerate(zip(self.spaces, value, strict=True))
        )

    def stack(self, values: Sequence[Any]) -> list[Any]:
        return [s.stack([v[i] for v in values]) for i, s in enumerate(self.spaces)]

    def unstack(self, batch: Any, n: int) -> list[Any]:
        parts = [s.unstack(b, n) for s, b in zip(self.spaces, batch, strict=True)]
        return [tuple(p[i] for p in parts) for i in range(n)]

    def flatten_batch(self, batch: Any, n: int) -> np.ndarray:
        return np.concatenate(
            [s.flatten_batch(b, n) for s, b in zip(self.spaces, batch, strict=True)], axis=1
        )
