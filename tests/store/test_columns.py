"""tracer.columns builds the same Arrow arrays as pyarrow's own constructors, without importing pandas."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from tracer.columns import array, fixed_width_strings, select, strings, take, to_numpy


@pytest.mark.parametrize("values, type_", [
    (np.arange(-3, 5, dtype=np.int64), None),
    (np.arange(5, dtype=np.int64), pa.int32()),
    (np.array([1.5, -2.0]), None),
    (np.array([True, False, True, True, False, False, True, False, True]), None),
    ([3, None, 5], pa.int64()),
    ([True, False, None], None),
    ([1, 2, 3], None),
    (["bitcoin"] * 5, None),
    (["a", None, "ßé", ""], pa.string()),
    ([1_700_000_000, None], pa.timestamp("s")),
    ([Decimal("81595492539307259101866"), None, Decimal(0), Decimal(-7)], pa.decimal128(38, 0)),
    ([], pa.string()),
    (np.zeros(0, dtype=np.int64), None),
])
def test_array_equals_pa_array(values, type_):
    ours = array(values, type_)
    theirs = pa.array(values, type_) if type_ is not None else pa.array(values)
    assert ours.type == theirs.type and ours.equals(theirs), (ours, theirs)
    ours.validate(full=True)


def test_a_narrowing_cast_that_does_not_fit_is_refused_like_pa_array():
    assert array(np.array([-5, 7], dtype=np.int64), pa.int32()).to_pylist() == [-5, 7]
    with pytest.raises(OverflowError, match="do not fit int32"):
        array(np.array([1, 2**40], dtype=np.int64), pa.int32())
    with pytest.raises(pa.ArrowInvalid):
        pa.array(np.array([1, 2**40], dtype=np.int64), pa.int32())


def test_a_null_mask_and_strings():
    values = np.array([10, 20, 30, 40], dtype=np.int64)
    null = np.array([False, True, False, True])
    assert array(values, pa.int64(), null=null).to_pylist() == [10, None, 30, None]
    assert strings(["x", "y", "z"], null=np.array([True, False, False])).to_pylist() == [None, "y", "z"]
    chars = np.frombuffer(b"ab01cd23", dtype=np.uint8).reshape(2, 4)
    assert fixed_width_strings(chars, null=np.array([False, True])).to_pylist() == ["ab01", None]


def test_take_of_strings_with_nulls_from_a_sliced_source():
    source = strings(["zero", "one", "", "three", "four"]).slice(1)
    idx = np.array([3, 0, 0, 2, 1, 3])
    null = np.array([False, False, True, False, False, True])
    ours = take(source, idx, null=null)
    ours.validate(full=True)
    assert ours.to_pylist() == ["four", "one", None, "three", "", None]
    assert take(source, np.zeros(0, np.int64)).to_pylist() == []
    assert take(strings(["a", None, "c"]), np.array([2, 1, 0])).to_pylist() == ["c", None, "a"]
    with pytest.raises(IndexError):
        take(source, np.array([4]))


@pytest.mark.parametrize("column", [
    pa.array([1, None, 3, 4, None, 6], pa.int64()).slice(1),
    pa.array([True, None, False, True, True, False, None, True, False, True]),
    pa.array([1_700_000_000, None, 5], pa.timestamp("s")),
    pa.array([Decimal(10**30), None, Decimal(-3)], pa.decimal128(38, 0)),
    pa.chunked_array([pa.array(["p", None]), pa.array(["q"])]),
])
def test_take_and_select_equal_pyarrows_take_and_filter(column):
    idx = np.array([2, 0, 1, 2, 0])
    expected = column.take(pa.array(idx))
    expected = expected.combine_chunks() if isinstance(expected, pa.ChunkedArray) else expected
    assert take(column, idx).equals(expected)
    mask = np.arange(len(column)) % 2 == 0
    table = pa.table({"c": column, "k": pa.array(np.arange(len(column)))})
    assert select(table, mask).equals(table.filter(pa.array(mask)).combine_chunks())
    assert select(table, np.ones(len(column), dtype=bool)) is table


def test_to_numpy_reads_chunked_sliced_and_boolean_columns():
    chunked = pa.chunked_array([array(np.arange(5, dtype=np.int32)).slice(2), array(np.array([7, 8], dtype=np.int32))])
    assert to_numpy(chunked).tolist() == [2, 3, 4, 7, 8] and to_numpy(chunked).dtype == np.int32
    flags = array(np.array([True, False, True, True, False, True, False, False, True, True])).slice(3)
    assert to_numpy(flags).tolist() == [True, False, True, False, False, True, True]
    with pytest.raises(ValueError, match="without nulls"):
        to_numpy(array([1, None], pa.int64()))


def test_building_columns_imports_no_pandas():
    code = ("import sys, numpy as np, pyarrow as pa; from tracer.columns import array, strings, take, to_numpy; "
            "a = array(np.arange(4)); s = take(strings(['x', 'y']), np.array([1, 0, 0, 1])); "
            "t = pa.table({'a': a, 's': s, 'b': array([True, None, False, True]), 'c': array(['k'] * 4)}); to_numpy(t['a']); "
            "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout == "False\n", done.stderr
