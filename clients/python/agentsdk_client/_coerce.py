"""Turn the app's observations and actions into owned, checked values of a space.

``make_coercer(space, what)`` returns a function ``value -> canonical value``
that always *copies* (the app may reuse its buffers after the call) and raises
``UsageError`` naming what was expected and what came. ``Space.coerce`` is the
reference; a small float ``Box`` (the common observation) gets a fast path that
checks bounds on Python floats, falling back to ``Space.coerce`` for anything
unusual so the error text and the edge cases stay the space module's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._errors import UsageError
from .protocol.spaces import Box, Space, SpaceError

Coercer = Callable[[Any], Any]

# Up to this many elements, checking bounds on Python floats beats numpy's ufuncs.
_PY_BOUNDS_MAX = 32


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value


def make_coercer(space: Space, what: str) -> Coercer:
    """A function that checks and copies one value of ``space`` (``what`` names it in errors)."""

    def slow(value: Any) -> Any:
        try:
            return _copy(space.coerce(value, what))
        except SpaceError as exc:
            raise UsageError(f"{exc}") from exc

    if not (isinstance(space, Box) and space.dtype.kind == "f" and space.flat_size <= _PY_BOUNDS_MAX):
        return slow

    dtype, shape = space.dtype, space.shape
    bounds = list(zip(space.low.ravel().tolist(), space.high.ravel().tolist(), strict=True))
    ndarray = np.ndarray

    def fast(value: Any) -> Any:
        if type(value) is ndarray and value.dtype.kind in "fiub":
            array = value.astype(dtype)  # always a copy
        elif isinstance(value, (list, tuple)):
            try:
                array = np.asarray(value)
            except (TypeError, ValueError):
                return slow(value)
            if array.dtype.kind not in "fiub":
                return slow(value)
            array = array.astype(dtype)
        else:
            return slow(value)
        if array.shape != shape:
            return slow(value)
        for v, (lo, hi) in zip(array.ravel().tolist(), bounds, strict=True):
            if not lo <= v <= hi:  # also catches NaN
                return slow(value)
        return array

    return fast
