"""The wire codec: msgpack with numpy arrays as an extension type.

This module is the Python implementation of PROTOCOL.md section "Encoding".
An array travels as msgpack ext type 1 whose payload is itself a msgpack array
``[dtype, shape, data]``: ``dtype`` a name from ``DTYPES``, ``shape`` a list of
non-negative ints, ``data`` the C-order little-endian bytes. Nothing else is
special: no pickle, no object dtype, no class hooks.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

NDARRAY_EXT = 1
MAX_NDIM = 8

# Names on the wire -> little-endian numpy dtypes. The only dtypes accepted.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
    )
}
_NAMES = {np.dtype(name): name for name in DTYPES}


class CodecError(ValueError):
    """A message could not be encoded or decoded; the text says which part."""


# (dtype, shape) -> the payload bytes before the data: [dtype, shape, bin-header].
# Arrays in one stream usually share a few layouts, so this makes packing a concat.
_PREFIXES: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}


def _pack_array(array: np.ndarray) -> msgpack.ExtType:
    key = (array.dtype, array.shape)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        name = _NAMES.get(array.dtype.newbyteorder("="))
        if name is None:
            raise CodecError(f"arrays of dtype {array.dtype} cannot be sent; use one of {', '.join(DTYPES)}")
        nbytes = array.size * array.dtype.itemsize
        full = msgpack.packb([name, list(array.shape), b"\0" * nbytes], use_bin_type=True)
        prefix = full[: len(full) - nbytes]
        if len(_PREFIXES) < 4096:
            _PREFIXES[key] = prefix
    if array.dtype.byteorder == ">" or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return msgpack.ExtType(NDARRAY_EXT, prefix + array.tobytes())


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return _pack_array(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    raise CodecError(f"cannot encode a value of type {type(obj).__name__}")


def _parse_payload(payload: bytes) -> tuple[Any, Any, Any]:
    """[dtype, shape, data] of an array payload; a fast path for the common layout."""
    # 0x93 = array of 3, then a fixstr dtype name and a fixarray shape of small ints.
    if len(payload) > 3 and payload[0] == 0x93 and 0xA0 <= payload[1] <= 0xBF:
        end = 2 + (payload[1] & 0x1F)
        if end < len(payload) and 0x90 <= payload[end] <= 0x98:
            ndim = payload[end] & 0x0F
            dims = payload[end + 1 : end + 1 + ndim]
            pos = end + 1 + ndim
            if len(dims) == ndim and all(d < 0x80 for d in dims) and pos < len(payload):
                marker, lengths = payload[pos], {0xC4: 1, 0xC5: 2, 0xC6: 4}
                if marker in lengths:
                    width = lengths[marker]
                    size = int.from_bytes(payload[pos + 1 : pos + 1 + width], "big")
                    data = payload[pos + 1 + width :]
                    if len(data) == size:
                        try:
                            name = payload[2:end].decode()
                        except UnicodeDecodeError as exc:
                            raise CodecError("array dtype is not valid UTF-8") from exc
                        return name, list(dims), data
    try:
        parts = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise CodecError("array payload is not valid msgpack") from exc
    if not (isinstance(parts, list) and len(parts) == 3):
        raise CodecError("array payload must be [dtype, shape, data]")
    return parts[0], parts[1], parts[2]


def _unpack_array(payload: bytes) -> np.ndarray:
    name, shape, data = _parse_payload(payload)
    if not isinstance(name, str) or name not in DTYPES:
        raise CodecError(f"array dtype {name!r} is not one of {', '.join(DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise CodecError(f"array shape must be a list of at most {MAX_NDIM} non-negative ints")
    if not isinstance(data, bytes):
        raise CodecError("array data must be msgpack bin")
    dtype = DTYPES[name]
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(data):
        raise CodecError(
            f"array data has {len(data)} bytes but dtype {name} and shape {shape} need "
            f"{count * dtype.itemsize}"
        )
    # A copy in native order: frombuffer views are read-only and would pin the whole body.
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _ext_hook(code: int, payload: bytes) -> Any:
    if code != NDARRAY_EXT:
        raise CodecError(f"unknown msgpack extension type {code}")
    return _unpack_array(payload)


def encode(value: Any) -> bytes:
    """Encode a message (dicts, lists, str, bytes, numbers, numpy arrays)."""
    try:
        return msgpack.packb(value, default=_default, use_bin_type=True)
    except CodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode message: {exc}") from exc


def decode(data: bytes, *, max_items: int = 1_000_000) -> Any:
    """Decode one message; anything but well-formed protocol msgpack raises CodecError."""
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_ext_hook,
            max_array_len=max_items,
            max_map_len=max_items,
            max_ext_len=len(data),
            max_bin_len=len(data),
            max_str_len=len(data),
        )
    except CodecError:
        raise
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CodecError(f"body is not a single msgpack value: {exc}") from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CodecError(f"body is not valid msgpack: {exc}") from exc
