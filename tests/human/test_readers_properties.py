"""Property tests for the line readers and the IBAN rule: every refused or kept line keeps its number."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.ingest.csvread import read_lines
from tracer.codecs.identifiers import InvalidIdentifier, validate_iban

LINE = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
    .map(lambda t: t.encode("utf-8")),
    st.just(b""),                      # a blank line
    st.just(b"caf\xe9"),               # Latin-1, not UTF-8
    st.just(b"\xff\xfe"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(LINE, max_size=30), st.booleans())
def test_read_lines_numbers_every_line_like_a_naive_reader(lines, final_newline):
    buf = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = read_lines(buf, first_line=5)
    expected_kept, expected_bad = [], []
    for number, raw in enumerate(buf.split(b"\n") if buf else [], start=5):
        if number - 5 == len(buf.split(b"\n")) - 1 and raw == b"" and buf.endswith(b"\n"):
            continue  # the empty remainder after the final newline is not a line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            expected_bad.append(f"line {number}")
            continue
        if text:
            expected_kept.append((number, text))
    assert [p for p, _, _ in got.refused.rows] == expected_bad
    assert list(zip(got.numbers.tolist(), got.split(), strict=True)) == expected_kept


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=18, max_size=18), st.integers(4, 21), st.integers(1, 9))
def test_iban_check_digits_catch_every_single_digit_error(bban, position, delta):
    iban = _iban("DE", bban)
    assert validate_iban(iban) == iban
    wrong = iban[:position] + str((int(iban[position]) + delta) % 10) + iban[position + 1:]
    try:
        validate_iban(wrong)
    except InvalidIdentifier as exc:
        assert "mod-97" in str(exc)
    else:
        raise AssertionError(f"{wrong} passed the mod-97 check")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=60), st.lists(st.integers(1, 20), min_size=1, max_size=8))
def test_occurrences_count_earlier_identical_rows_whatever_the_chunks(keys, cuts):
    """The n-th row of a key in a file is occurrence n-1, however the file is cut into chunks."""
    from tracer.ingest.human.bank import Occurrences

    expected, seen = [], {}
    for key in keys:
        expected.append(seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
    numbering, got, start, k = Occurrences(), [], 0, 0
    while start < len(keys):
        end = min(len(keys), start + cuts[k % len(cuts)])
        lines = np.arange(start, end)[::-1]  # rows may come in any order; the line decides
        chunk = np.array(keys[start:end], np.uint64)[::-1]
        got.extend(numbering.number(lines, chunk)[::-1].tolist())
        start, k = end, k + 1
    assert got == expected
