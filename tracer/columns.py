"""Arrow arrays built from numpy arrays and short Python lists without importing pandas.

``pa.array`` asks pyarrow's pandas shim whether its argument is a pandas object, and the shim imports
pandas (~0.2 s) the first time it is asked — for a numpy array and for a plain list alike; so does
``Array.to_numpy``. The ingest path builds and reads its columns through these functions instead, from
buffers, so that ``tracer ingest bitcoin`` does not pay for pandas. Nothing is hidden from library users:
``to_pandas`` and ``pa.array`` work as before and import pandas when they are called.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

_FIXED: dict[pa.DataType, Any] = {
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
    pa.float32(): np.float32, pa.float64(): np.float64,
    pa.timestamp("s"): np.int64, pa.timestamp("ms"): np.int64, pa.timestamp("us"): np.int64,
}
_FROM_DTYPE = {np.dtype(v): k for k, v in reversed(_FIXED.items()) if not pa.types.is_timestamp(k)}


def _validity(null: np.ndarray | None, n: int) -> tuple[pa.Buffer | None, int]:
    if null is None:
        return None, 0
    null = np.asarray(null, dtype=bool)
    if null.shape != (n,):
        raise ValueError(f"null mask of shape {null.shape} for {n} values")
    count = int(null.sum())
    return (pa.py_buffer(np.packbits(~null, bitorder="little")), count) if count else (None, 0)


def strings(values: Sequence[str | None], null: np.ndarray | None = None) -> pa.Array:
    """A string array from a list of str (``None`` or ``null`` marks a null)."""
    n = len(values)
    if null is None and n and isinstance(values[0], str) and isinstance(values, list) and values.count(values[0]) == n:
        one = values[0].encode()  # a constant column (the chain's name on every row): no per-value work
        return _string_array(np.arange(0, (n + 1) * len(one), len(one), dtype=np.int64), one * n, None)
    if null is None and any(v is None for v in values):
        null = np.fromiter((v is None for v in values), dtype=bool, count=n)
    encoded = [b"" if v is None else v.encode() for v in values]
    if null is not None:
        encoded = [b"" if missing else e for e, missing in zip(encoded, null, strict=True)]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return _string_array(offsets, b"".join(encoded), null)


def _string_array(offsets: np.ndarray, data: bytes | np.ndarray, null: np.ndarray | None) -> pa.Array:
    """string (or large_string past 2 GiB of text) from int64 offsets, the bytes and a null mask."""
    n = offsets.size - 1
    kind = pa.large_string() if offsets[-1] >= 2**31 else pa.string()
    offsets = offsets.astype(np.int64 if kind == pa.large_string() else np.int32)
    validity, nulls = _validity(null, n)
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)


def fixed_width_strings(chars: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """An (N, w) uint8 array of ASCII codes, one row per value, as a string array of width-w values."""
    n, w = chars.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32) if n * w < 2**31 else None
    if offsets is None:
        raise ValueError(f"{n} strings of {w} characters do not fit one Arrow string array")
    validity, nulls = _validity(null, n)
    data = pa.py_buffer(np.ascontiguousarray(chars, dtype=np.uint8))
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), data], null_count=nulls)


def array(values: np.ndarray | Sequence[Any], type: pa.DataType | None = None,  # noqa: A002  (pa.array's name)
          null: np.ndarray | None = None) -> pa.Array:
    """What ``pa.array(values, type, mask=null)`` gives, for numbers, booleans, timestamps, strings and
    decimal128 given as a numpy array or a list (``None`` in a list is a null)."""
    if isinstance(values, pa.Array):
        return values if type is None or values.type == type else values.cast(type)
    if not isinstance(values, np.ndarray):
        values = list(values)
        if type is None:
            probe = next((v for v in values if v is not None), None)
            type = (pa.string() if isinstance(probe, str) else pa.bool_() if isinstance(probe, (bool, np.bool_))
                    else pa.decimal128(38, 0) if isinstance(probe, Decimal) else pa.int64())
        if pa.types.is_string(type) or pa.types.is_large_string(type):
            return strings(values, null).cast(type) if pa.types.is_large_string(type) else strings(values, null)
        if any(v is None for v in values):
            missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            null = missing if null is None else (missing | np.asarray(null, dtype=bool))
            values = [0 if v is None else v for v in values]
        if pa.types.is_decimal(type):
            return _decimals(values, type, null)
        values = np.asarray(values, dtype=bool if pa.types.is_boolean(type) else _FIXED[type])
    elif values.ndim != 1:
        raise ValueError(f"a column needs a 1-D array, got shape {values.shape}")
    n = values.size
    if type is None:
        type = pa.bool_() if values.dtype == bool else _FROM_DTYPE[values.dtype]
    validity, nulls = _validity(null, n)
    if pa.types.is_boolean(type):
        data = pa.py_buffer(np.packbits(values.astype(bool, copy=False), bitorder="little"))
    else:
        target = np.dtype(_FIXED[type])
        if values.dtype.kind in "iu" and target.kind in "iu" and values.size and values.dtype != target:
            lo, hi, limits = values.min(), values.max(), np.iinfo(target)
            if lo < limits.min or hi > limits.max:  # pa.array's safe cast refuses these too
                raise OverflowError(f"values {lo}..{hi} do not fit {type}")
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=target))
    return pa.Array.from_buffers(type, n, [validity, data], null_count=nulls)


def _decimals(values: list, type: pa.DataType, null: np.ndarray | None) -> pa.Array:
    """decimal128 with scale 0 from integers (or integral Decimals): two little-endian 64-bit limbs each."""
    if type.scale != 0:
        raise ValueError(f"only scale-0 decimals are built here, not {type}")
    ints = [int(v) for v in values]
    limit = 10**type.precision
    if any(not -limit < v < limit for v in ints):
        raise ValueError(f"a value does not fit {type}")
    raw = b"".join(v.to_bytes(16, "little", signed=True) for v in ints)
    validity, nulls = _validity(null, len(ints))
    return pa.Array.from_buffers(type, len(ints), [validity, pa.py_buffer(raw)], null_count=nulls)


def _bits(buf: pa.Buffer | None, offset: int, n: int) -> np.ndarray:
    """n bits of an Arrow bitmap from bit ``offset`` as booleans."""
    if n == 0:
        return np.zeros(0, dtype=bool)
    return np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")[offset: offset + n].astype(bool)


def take(arr: pa.Array | pa.ChunkedArray, idx: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """``arr.take(idx)`` done with numpy, for strings, booleans and fixed-width types (integers, floats,
    timestamps, decimals) — ``Array.take`` would import pyarrow.compute (~50 ms of start-up). Rows where
    ``null`` is set come out null (their ``idx`` is not read)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    idx = np.asarray(idx, dtype=np.int64)
    n = len(arr)
    if null is not None:
        null = np.asarray(null, dtype=bool)
        idx = np.where(null, 0, idx)
    if idx.size and (n == 0 or idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"take of index {int(idx.min() if idx.size and idx.min() < 0 else idx.max())} "
                         f"from {n} values")
    if arr.null_count:
        missing = ~_bits(arr.buffers()[0], arr.offset, n)[idx]
        null = missing if null is None else (null | missing)
    kind = arr.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        _, off_buf, data_buf = arr.buffers()
        width = np.int64 if pa.types.is_large_string(kind) else np.int32
        offsets = np.frombuffer(off_buf, dtype=width)[arr.offset: arr.offset + n + 1].astype(np.int64)
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
        starts = offsets[idx] if n else np.zeros(0, np.int64)
        lengths = offsets[idx + 1] - starts if n else np.zeros(0, np.int64)
        if null is not None:
            lengths[null] = 0
        new_offsets = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        positions = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(int(new_offsets[-1]), dtype=np.int64)
        return _string_array(new_offsets, data[positions], null)
    validity, nulls = _validity(null, idx.size)
    if pa.types.is_boolean(kind):
        values = _bits(arr.buffers()[1], arr.offset, n)[idx]
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
    elif kind.bit_width % 8 == 0 and not pa.types.is_nested(kind) and not pa.types.is_dictionary(kind):
        width = kind.bit_width // 8
        rows = np.frombuffer(arr.buffers()[1], dtype=np.uint8)[arr.offset * width: (arr.offset + n) * width]
        data = pa.py_buffer(np.ascontiguousarray(rows.reshape(n, width)[idx]))
    else:
        raise TypeError(f"take of {kind} is not built here")
    return pa.Array.from_buffers(kind, idx.size, [validity, data], null_count=nulls)


def select(data: pa.Table | pa.Array | pa.ChunkedArray, mask: np.ndarray) -> pa.Table | pa.Array:
    """``data.filter(mask)`` for a table or a column (see :func:`take`); all rows kept is free."""
    mask = np.asarray(mask, dtype=bool)
    if mask.all():
        return data
    rows = np.flatnonzero(mask)
    if isinstance(data, pa.Table):
        return pa.table({name: take(data[name], rows) for name in data.column_names}, schema=data.schema)
    return take(data, rows)


def to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a fixed-width numeric or boolean column without nulls as a numpy array."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if any(c.null_count for c in chunks):
        raise ValueError("to_numpy needs a column without nulls")
    parts = []
    for c in chunks:
        if pa.types.is_boolean(c.type):
            parts.append(_bits(c.buffers()[1], c.offset, len(c)))
        elif len(c):
            parts.append(np.frombuffer(c.buffers()[1], dtype=_FIXED[c.type])[c.offset: c.offset + len(c)])
    if not parts:
        return np.zeros(0, dtype=bool if pa.types.is_boolean(column.type) else _FIXED[column.type])
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
