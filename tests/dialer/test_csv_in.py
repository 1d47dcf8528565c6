from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import pytest

from dialer.csv_in import MAX_LINE_BYTES, MAX_RECORD_CHARS, CsvError, Row, RowError, read_csv


def _read(data: bytes, **kwargs: object) -> list[Row | RowError]:
    options: dict[str, object] = {"required": ("number",), "optional": ("name",)}
    options.update(kwargs)
    return list(read_csv(io.BytesIO(data), **options))  # type: ignore[arg-type]


def _errors(items: list[Row | RowError]) -> list[tuple[int, str]]:
    return [(item.line, item.reason) for item in items if isinstance(item, RowError)]


def test_rows_come_with_stripped_values_by_column_and_their_physical_line() -> None:
    items = _read(b'\xef\xbb\xbfNumber , name\n 1 ,"A"\n\n2,"two\nlines"\n3,C\n')

    assert items == [
        Row(2, {"number": "1", "name": "A"}),
        Row(4, {"number": "2", "name": "two\nlines"}),
        Row(6, {"number": "3", "name": "C"}),
    ]


def test_crlf_line_endings_and_a_missing_final_newline_are_fine() -> None:
    assert _read(b"number,name\r\n1,A\r\n2,B") == [
        Row(2, {"number": "1", "name": "A"}),
        Row(3, {"number": "2", "name": "B"}),
    ]


def test_blank_records_are_skipped_but_keep_counting_lines() -> None:
    assert _read(b"number,name\n\n , \n,\n1,A\n") == [Row(5, {"number": "1", "name": "A"})]


def test_aliases_are_keyed_by_the_canonical_name_and_extra_columns_as_written() -> None:
    items = _read(b"MSISDN,City\n1,Pune\n", extra=True, aliases={"number": ("phone", "msisdn")})

    assert items == [Row(2, {"number": "1", "City": "Pune"})]


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        pytest.param(b"number,name\n1,A,x\n", 2, "3 fields but the header has 2", id="too many"),
        pytest.param(b"number,name\n1\n", 2, "1 fields but the header has 2", id="too few"),
        pytest.param(b'number,name\n1,"A"x\n', 2, "',' expected after '\"'", id="stray quote"),
        pytest.param(b"number,name\n1,A\x00\n", 2, "NUL byte", id="nul"),
        pytest.param(b"number,name\n1,A\rB\n", 2, "lone carriage return", id="lone cr"),
        pytest.param(b'number,name\n1,"A\n\n2,B\n', 2, "quote is never closed", id="open quote"),
        pytest.param(
            b"number,name\n1," + b"x" * 1001 + b"\n", 2, "name is longer than 1000", id="too long"
        ),
        pytest.param(
            b'number,name\n1,"' + b"x" * 140_000 + b'"\n', 2, "field larger than", id="csv limit"
        ),
    ],
)
def test_a_bad_record_is_a_row_error_naming_its_line(data: bytes, line: int, reason: str) -> None:
    errors = _errors(_read(data))

    assert len(errors) == 1, errors
    assert errors[0][0] == line
    assert reason in errors[0][1]


def test_reading_goes_on_after_a_bad_record() -> None:
    items = _read(b"number,name\n1,A,x\n2,B\x00\n3,C\n")

    assert _errors(items) == [
        (2, "3 fields but the header has 2"),
        (3, "contains a NUL byte (the file is not plain text)"),
    ]
    assert items[-1] == Row(4, {"number": "3", "name": "C"})


def test_a_quoted_field_that_spans_lines_does_not_shift_later_line_numbers() -> None:
    items = _read(b'number,name\n1,"a\nb\nc"\n2,B,x\n')

    assert _errors(items) == [(5, "3 fields but the header has 2")]


def test_per_column_caps_apply_to_the_stripped_value() -> None:
    items = _read(b"number,name\n1,  abc  \n2,abcd\n", max_chars={"name": 3}, default_max_chars=5)

    assert items[0] == Row(2, {"number": "1", "name": "abc"})
    assert _errors(items) == [(3, "name is longer than 3 characters")]
    assert _errors(_read(b"number,name\n123456,A\n", default_max_chars=5)) == [
        (2, "number is longer than 5 characters")
    ]


def test_a_line_over_the_line_limit_is_skipped_as_an_error() -> None:
    data = b"number,name\n1," + b"x" * (MAX_LINE_BYTES + 10) + b"\n2,B\n"

    items = _read(data)

    assert _errors(items) == [(2, f"a line longer than {MAX_LINE_BYTES} bytes")]
    assert items[-1] == Row(3, {"number": "2", "name": "B"})


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        pytest.param(b"", 0, "the file is empty", id="empty"),
        pytest.param(b"\n , \n", 0, "the file is empty", id="blank"),
        pytest.param(b"name\nA\n", 1, "no number column", id="missing"),
        pytest.param(b"number,city\n1,P\n", 1, "unknown column 'city'", id="unknown"),
        pytest.param(b"number,name,Name\n1,A,B\n", 1, "appears twice", id="repeated"),
        pytest.param(b"number,,name\n1,,A\n", 1, "column 2 of the header has no name", id="blank"),
        pytest.param(b"number\r1\r", 1, "lone carriage return", id="cr endings"),
        pytest.param(b'"number\n1\n', 1, "quote is never closed", id="open quote"),
        pytest.param(b"num\x00ber\n1\n", 1, "NUL", id="nul"),
        pytest.param(b"number\n1\nB\xe9la\n", 3, "not UTF-8", id="latin-1"),
        pytest.param("number\n1\n".encode("utf-16"), 1, "not UTF-8", id="utf-16"),
    ],
)
def test_a_file_level_problem_raises_csv_error_with_its_line(
    data: bytes, line: int, reason: str
) -> None:
    with pytest.raises(CsvError) as excinfo:
        _read(data)

    assert excinfo.value.line == line
    assert reason in excinfo.value.reason


def test_two_aliases_of_one_column_are_refused() -> None:
    with pytest.raises(CsvError, match="'number' and 'phone' are the same column"):
        _read(b"number,phone\n1,2\n", aliases={"number": ("phone",)})


def test_the_header_is_given_with_a_header_error() -> None:
    with pytest.raises(CsvError) as excinfo:
        _read(b"9876543210 , Asha\n")

    assert excinfo.value.header == ("9876543210", "Asha")


def test_rows_before_a_late_encoding_error_are_yielded_first() -> None:
    items: list[Row | RowError] = []
    with pytest.raises(CsvError, match="line 3"):
        for item in read_csv(io.BytesIO(b"number\n1\n\xff\n"), required=("number",)):
            items.append(item)

    assert items == [Row(2, {"number": "1"})]


class _Endless(io.RawIOBase):
    """An endless stream of CSV lines that is never held in memory at once."""

    def __init__(self, rows: int) -> None:
        self._lines: Iterator[bytes] = (
            b"number,name\n" if i < 0 else b"%d,%s\n" % (i, b"n" * 50) for i in range(-1, rows)
        )
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while len(self._buffer) < len(b):
            line = next(self._lines, b"")
            if not line:
                break
            self._buffer += line
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


@pytest.mark.slow
def test_a_large_file_is_read_in_bounded_memory() -> None:
    # 60,000 rows (3.4 MB): what the reader holds must not grow with the file.
    stream = io.BufferedReader(_Endless(60_000))  # type: ignore[type-var]
    tracemalloc.start()
    count = 0
    try:
        for item in read_csv(stream, required=("number", "name")):
            assert isinstance(item, Row)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 60_000
    assert peak < 500_000, peak


def test_only_a_value_over_its_cap_leaves_the_record_well_formed() -> None:
    items = _read(b"number,name\n1," + b"x" * 1001 + b"\n2,B,x\n")

    assert [(item.line, item.malformed) for item in items if isinstance(item, RowError)] == [
        (2, False),
        (3, True),
    ]


def test_a_record_spanning_lines_past_the_record_limit_is_an_error() -> None:
    # Quoted line breaks in many fields, each under the csv module's own field limit.
    field = b'"' + b"y" * 1000 + b'\n"'
    data = b"number,name\n1," + b",".join([field] * 1100) + b"\n"

    errors = _errors(_read(data))

    assert errors[0] == (2, f"a record longer than {MAX_RECORD_CHARS} characters")
