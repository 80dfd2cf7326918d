"""Read a whole trace file (CSV or Parquet) and check it against `fpi.data.schema`.

Every problem in a file is collected before anything is raised, so a user fixes
a file in one pass; either the whole file loads or a `TraceError` says why not.
The checks themselves are `fpi.data.check`; reading in batches is `fpi.data.stream`.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Callable, Mapping, NoReturn, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fpi.data.check import MAX_EXAMPLES, MAX_ROWS_KEPT, check_frame, shorten
from fpi.data.files import PARQUET_MAGIC, PARQUET_SUFFIXES
from fpi.errors import Problem, TraceError
from fpi.data.schema import (
    COLUMNS_BY_NAME,
)


Source = Union[str, os.PathLike, bytes, IO[bytes]]


# Signatures of files people upload by mistake, with the fix to tell them.
_NOT_CSV_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "this is a PDF document"),
    (b"PK\x03\x04", "this is a ZIP archive or an Excel workbook; export the sheet as 'CSV UTF-8'"),
    (b"\xd0\xcf\x11\xe0", "this is an old Excel workbook; export the sheet as 'CSV UTF-8'"),
    (b"\x1f\x8b", "this is gzip-compressed; decompress it first"),
)


def load_traces(
    source: Source,
    *,
    column_map: Mapping[str, str] | None = None,
    fmt: str | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Load a CSV or Parquet trace file and check it against the contract.

    `source` is a path, raw bytes or a binary file-like (e.g. Streamlit's
    UploadedFile). The format is `fmt`, else Parquet if the bytes start with
    PAR1, else CSV. Returns the typed frame sorted by (dialogue_id, turn_index);
    raises `TraceError` listing every problem found.
    """
    if fmt is not None and fmt.lower() not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    label = name or _source_name(source)
    data = _read_bytes(source, label)
    if (fmt or "").lower() == "parquet" or (fmt is None and data[:4] == PARQUET_MAGIC):
        frame = _parse_parquet(data, label)
        return check_frame(frame, column_map, label, from_text=False)
    if fmt is None and label and label.lower().endswith(PARQUET_SUFFIXES):
        _fail("not_parquet", "the name says Parquet but the content is not a Parquet file", label)
    frame, rows, problems = _parse_csv(data, label)
    return check_frame(frame, column_map, label, from_text=True, row_numbers=rows, problems=problems)


@dataclass(frozen=True)
class UploadSize:
    """What reading a file would hold in memory, known before reading it."""

    rows: int
    """Turns: exact for Parquet (its footer), at most this many for CSV (its line count)."""
    decoded_bytes: int
    """Bytes of the values once decompressed (Parquet's footer), or the CSV's own size."""
    exact: bool


def upload_size(data: bytes) -> UploadSize:
    """Rows and decoded bytes of a CSV or Parquet file, from its footer or line count, reading no values.

    A 342 KB Parquet file can hold a million turns: the compressed size says nothing about memory.
    """
    if data[:4] == PARQUET_MAGIC:
        try:
            meta = pq.ParquetFile(pa.BufferReader(data)).metadata
            decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            return UploadSize(rows=int(meta.num_rows), decoded_bytes=int(decoded), exact=True)
        except Exception:  # an unreadable footer is reported by the reader, with its reason
            return UploadSize(rows=0, decoded_bytes=len(data), exact=False)
    return UploadSize(rows=max(0, data.count(b"\n") - 1) + (not data.endswith(b"\n")),
                      decoded_bytes=len(data), exact=False)


def check_upload_size(data: bytes, *, max_rows: int, max_bytes: int, source: str | None = None) -> UploadSize:
    """Refuse, before reading any value, a file that would not fit in the app's memory budget.

    Raises `TraceError` (code `too_large`) saying how big the file is, the limit, and the
    out-of-core way to use it instead: `fpi predict` and the app's large-file view.
    """
    size = upload_size(data)
    if size.exact and size.rows <= max_rows and size.decoded_bytes <= max_bytes:
        size = replace(size, decoded_bytes=max(size.decoded_bytes, _decoded_text_bytes(data)))
    hint = ("Score it out of core with `fpi predict FILE -o scored.parquet` and open the output under "
            "'Large scored file' on the Data page, or split the file; an administrator can raise the limit "
            "with FPI_MAX_UPLOAD_ROWS / FPI_MAX_UPLOAD_MB")
    about = "" if size.exact else "about "
    if size.rows > max_rows:
        _fail("too_large", f"the file holds {about}{size.rows:,} turns; the app loads at most {max_rows:,}",
              source, hint=hint)
    if size.decoded_bytes > max_bytes:
        _fail("too_large", f"the file's values take {size.decoded_bytes / 1e6:,.0f} MB once decompressed; the app "
              f"loads at most {max_bytes / 1e6:,.0f} MB", source, hint=hint)
    return size


def _decoded_text_bytes(data: bytes) -> int:
    """Bytes the text columns of a Parquet file take once each dictionary is expanded.

    The footer counts a dictionary-encoded value once, however many rows repeat it; reading
    the columns as dictionaries (never expanded) gives the true size at the cost of the
    compressed size.
    """
    try:
        schema = pq.read_schema(pa.BufferReader(data))
        names = [f.name for f in schema
                 if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type)
                 or pa.types.is_large_binary(f.type)]
        if not names:
            return 0
        table = pq.read_table(pa.BufferReader(data), columns=names, read_dictionary=names)
    except Exception:  # unreadable: the reader reports it with its reason
        return 0
    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if isinstance(chunk, pa.DictionaryArray):
                lengths = pc.binary_length(chunk.dictionary)
                total += int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0)
            else:
                total += int(pc.sum(pc.binary_length(chunk)).as_py() or 0)
    return total


def _source_name(source: Source) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


def _read_bytes(source: Source, label: str | None) -> bytes:
    """All the bytes of `source`; an unreadable path is bad input, not a crash."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            _fail("unreadable", f"cannot read the file ({exc.strerror or exc})", label)
    if hasattr(source, "getvalue"):  # BytesIO and UploadedFile: whole buffer, wherever the cursor is
        data = source.getvalue()
    else:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            source.seek(0)
        data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _fail(code: str, reason: str, source: str | None, hint: str | None = None) -> NoReturn:
    raise TraceError([Problem(None, reason, code, hint=hint)], source=source)


def _parse_parquet(data: bytes, label: str | None) -> pd.DataFrame:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # pyarrow raises many types for corrupt files; all mean "unreadable"
        _fail("not_parquet", f"not a readable Parquet file ({shorten(str(exc), 120)})", label)
    problems = parquet_column_problems(table)
    if problems:
        raise TraceError(problems, source=label)
    try:
        return table.to_pandas()
    except Exception as exc:
        _fail("not_parquet", f"not a readable Parquet file ({shorten(str(exc), 120)})", label)


def _is_nested(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_nested(kind)


def parquet_column_problems(table: pa.Table) -> list[Problem]:
    """Columns no check can read, each named: nested values (struct, list, map) anywhere, and
    contract text columns stored as bytes that are not UTF-8 (with their rows)."""
    problems = []
    for name, column in zip(table.column_names, table.columns):
        if _is_nested(column.type):
            problems.append(Problem(
                str(name), f"holds nested values ({column.type}), which fpi cannot check, score or write to CSV",
                "nested_column", hint="Flatten it into plain columns (one per field) or drop it"))
            continue
        kind = COLUMNS_BY_NAME.get(str(name))
        if kind is None or not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            continue
        try:
            pc.cast(column, pa.large_string())
        except pa.ArrowInvalid:
            bad = [i for i, v in enumerate(column.to_pylist()) if v is not None and not _utf8(v)]
            problems.append(Problem(str(name), "not valid UTF-8 text", "encoding",
                                    rows=tuple(i + 2 for i in bad[:MAX_ROWS_KEPT]), count=len(bad),
                                    examples=tuple(repr(column[i].as_py())[:40] for i in bad[:MAX_EXAMPLES]),
                                    hint="Write the column as UTF-8 strings"))
    return problems


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_csv(data: bytes, label: str | None) -> tuple[pd.DataFrame, np.ndarray, list[Problem]]:
    """Parse CSV bytes with every cell as text (so 'NA' stays text and '' means missing)."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    buf = pa.py_buffer(data).slice(bom)  # zero-copy, unlike data[3:]
    head = data[bom : bom + 65536]
    sniff_csv(head, label)
    first_line = head.split(b"\n", 1)[0]
    # enough string-typed columns for the header; a quoted line break in it means look further
    width = (head if first_line.count(b'"') % 2 else first_line).count(b",") + 1
    convert = pv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(width)},
                                strings_can_be_null=False)
    bad_rows: list[tuple[int | None, str]] = []

    def read(threads: bool, handler: Callable | None) -> pa.Table:
        return pv.read_csv(
            pa.BufferReader(buf),
            read_options=pv.ReadOptions(autogenerate_column_names=True, use_threads=threads,
                                        block_size=1 << 24),
            parse_options=pv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler),
            convert_options=convert,
        )

    def remember(row: pv.InvalidRow) -> str:
        bad_rows.append((row.number, row.text))
        return "skip"

    try:
        try:
            table = read(True, None)
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) or "Expected" not in str(exc):
                raise
            _require_utf8(data, label)  # the reader can't hand us a bad row that isn't text
            table = read(False, remember)  # serial, so the reader knows each bad row's number
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc):
            _require_utf8(data, label)
            _fail("encoding", "the file is not valid UTF-8 text", label)
        _fail("not_csv", f"not a readable CSV file ({shorten(str(exc), 120)})", label)
    if table.num_rows == 0:
        _fail("empty_file", "the file has no header and no rows", label)
    names = [str(c[0].as_py()) if c[0].is_valid else "" for c in table.columns]
    table = table.slice(1)
    if any(t != pa.string() for t in table.schema.types):  # the header had more fields than its first line
        table = table.cast(pa.schema([(f, pa.string()) for f in table.column_names]))
    frame = table.to_pandas()
    frame.columns = names
    problems: list[Problem] = []
    rows = np.arange(len(frame)) + 2
    if bad_rows:  # the kept rows' spreadsheet numbers skip over the rejected ones
        skipped = np.array(sorted(n for n, _ in bad_rows if n is not None), dtype=np.int64)
        rows = np.setdiff1d(np.arange(2, len(frame) + len(skipped) + 2), skipped)[: len(frame)]
        problems.append(Problem(
            None, f"wrong number of fields (the header has {len(names)})", "bad_row",
            rows=tuple(skipped[:MAX_ROWS_KEPT].tolist()), count=len(bad_rows),
            examples=tuple(shorten(t, 60) for _, t in bad_rows[:MAX_EXAMPLES]),
            hint="Quote values that contain commas or line breaks"))
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        sep = "semicolons" if ";" in names[0] else "tabs"
        problems.append(Problem(None, f"the file seems to be separated by {sep}, not commas", "not_csv",
                                hint="Save it as comma-separated CSV"))
    return frame, rows, problems


def sniff_csv(head: bytes, label: str | None) -> None:
    """Reject what is plainly not CSV text, with a message that says what it is."""
    if not head.strip():
        _fail("empty_file", "the file is empty", label)
    sample = head[:400]
    half = len(sample) // 2
    if sample[:2] in (b"\xff\xfe", b"\xfe\xff") or (
        half >= 2 and max(sample[0::2].count(0), sample[1::2].count(0)) > 0.4 * half
    ):
        _fail("encoding", "the file is UTF-16 text, not UTF-8", label, hint="Save it as 'CSV UTF-8'")
    for magic, what in _NOT_CSV_SIGNATURES:
        if head.startswith(magic):
            _fail("not_csv", f"not a CSV file: {what}", label)
    if b"\x00" in head:
        _fail("not_csv", "not a CSV file: it contains binary data", label)
    if re.match(rb"\s*[\[{]\s*[\[{\"]", head):  # no CSV header starts like [{" or {"
        _fail("not_csv", "not a CSV file: it looks like JSON", label,
              hint="Convert it to CSV with one row per turn")


def _require_utf8(data: bytes, label: str | None) -> None:
    """Say where the first undecodable byte is; a line, not a row, as quoted cells may span lines."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        _fail("encoding", f"the file is not valid UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
              label, hint="Save it as 'CSV UTF-8' (Excel) or re-encode it to UTF-8")
