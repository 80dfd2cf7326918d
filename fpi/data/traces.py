"""Read, check, write and summarise trace files: the "how" of `fpi.data.schema`.

Every problem in a file is collected before anything is raised, so a user fixes
a file in one pass; either the whole file loads or a `TraceError` says why not.

Row numbers follow a spreadsheet: the header is row 1 and the first turn row 2,
counted in the order the rows came in (before sorting). Parquet files and
in-memory frames use the same convention: position in the frame + 2.

Timestamps without a UTC offset are read as UTC; all come out as UTC, in microseconds.
"""
from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Callable, Mapping, NoReturn, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fpi.errors import FpiError, Problem, TraceError
from fpi.data.schema import (
    COLUMNS, COLUMNS_BY_NAME, FALSE_STRINGS, KEY_COLUMNS, LABEL_COLUMN,
    LABELS, MAX_ID_CHARS, MAX_TEXT_CHARS, REQUIRED_COLUMNS, TRUE_STRINGS, Kind, feature_name_problem, is_stage_signal, is_unusable_stage_signal,
    safe_feature_name,
)

__all__ = [
    "TraceSummary", "UploadSize", "check_upload_size", "dataset_fingerprint", "upload_size", "load_traces", "normalise_column_name", "stage_signal_columns",
    "summarize_traces", "validate_traces", "write_traces",
]

Source = Union[str, os.PathLike, bytes, IO[bytes]]

PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_ROWS_KEPT = 50  # rows listed per problem; `count` always has the full number
MAX_EXAMPLES = 3
TIMESTAMP_UNIT = "us"  # what pandas 3 parses ISO strings to; one unit everywhere (finer digits are dropped)

# Signatures of files people upload by mistake, with the fix to tell them.
_NOT_CSV_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "this is a PDF document"),
    (b"PK\x03\x04", "this is a ZIP archive or an Excel workbook; export the sheet as 'CSV UTF-8'"),
    (b"\xd0\xcf\x11\xe0", "this is an old Excel workbook; export the sheet as 'CSV UTF-8'"),
    (b"\x1f\x8b", "this is gzip-compressed; decompress it first"),
)
_ABBREVIATIONS = {
    "conf": "confidence", "confid": "confidence", "cnf": "confidence", "score": "confidence",
    "prob": "confidence", "idx": "index", "dialog": "dialogue", "dlg": "dialogue",
    "session": "dialogue", "conversation": "dialogue", "ts": "timestamp", "time": "timestamp",
    "ww": "wake", "vt": "wake", "wakeword": "wake", "res": "result",
}


# ---------------------------------------------------------------- loading

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
        return _validate(frame, column_map, label, from_text=False)
    if fmt is None and label and label.lower().endswith(PARQUET_SUFFIXES):
        _fail("not_parquet", "the name says Parquet but the content is not a Parquet file", label)
    frame, rows, problems = _parse_csv(data, label)
    return _validate(frame, column_map, label, from_text=True, row_numbers=rows, problems=problems)


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


def validate_traces(
    frame: pd.DataFrame, *, column_map: Mapping[str, str] | None = None, source: str | None = None
) -> pd.DataFrame:
    """Check an in-memory frame (cells as text or already typed) and return it typed and sorted.

    Extra columns are returned unchanged. Naive timestamps are read as UTC.
    """
    return _validate(frame, column_map, source, from_text=False)


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
        _fail("not_parquet", f"not a readable Parquet file ({_short(str(exc), 120)})", label)
    problems = _parquet_column_problems(table)
    if problems:
        raise TraceError(problems, source=label)
    try:
        return table.to_pandas()
    except Exception as exc:
        _fail("not_parquet", f"not a readable Parquet file ({_short(str(exc), 120)})", label)


def _is_nested(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_nested(kind)


def _parquet_column_problems(table: pa.Table) -> list[Problem]:
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
    _sniff(head, label)
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
        _fail("not_csv", f"not a readable CSV file ({_short(str(exc), 120)})", label)
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
            examples=tuple(_short(t, 60) for _, t in bad_rows[:MAX_EXAMPLES]),
            hint="Quote values that contain commas or line breaks"))
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        sep = "semicolons" if ";" in names[0] else "tabs"
        problems.append(Problem(None, f"the file seems to be separated by {sep}, not commas", "not_csv",
                                hint="Save it as comma-separated CSV"))
    return frame, rows, problems


def _sniff(head: bytes, label: str | None) -> None:
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


# ---------------------------------------------------------------- validation

@dataclass
class _Bad:
    code: str
    reason: str
    mask: np.ndarray


def _validate(
    frame: pd.DataFrame,
    column_map: Mapping[str, str] | None,
    source: str | None,
    *,
    from_text: bool,
    row_numbers: np.ndarray | None = None,
    problems: list[Problem] | None = None,
) -> pd.DataFrame:
    problems = list(problems or [])
    rows = np.arange(len(frame)) + 2 if row_numbers is None else row_numbers
    checked = check_batch(frame, column_map=column_map, rows=rows, from_text=from_text, whole_file=True)
    problems.extend(checked.problems)
    out, bad_key = checked.columns, checked.bad_key
    if all(k in out for k in KEY_COLUMNS):
        dup = _duplicates(out, rows, ~bad_key)
        if dup is not None:
            problems.append(dup)
    if problems:
        raise TraceError(problems, source=source)
    result = pd.DataFrame(out)
    if _is_sorted(result["dialogue_id"], result["turn_index"]):  # files we wrote are; skip the costly take
        return result
    return result.sort_values(list(KEY_COLUMNS), kind="stable", ignore_index=True)


@dataclass
class CheckedBatch:
    """Some rows of a file, each column parsed and checked; nothing raised, nothing sorted."""

    columns: dict[str, pd.Series]
    """Contract columns typed (a bad cell is missing), in contract order; then extras in file order."""
    problems: list[Problem]
    bad_key: np.ndarray
    """Rows whose dialogue_id or turn_index is unusable (left out of the duplicate check)."""


def check_batch(
    frame: pd.DataFrame,
    *,
    column_map: Mapping[str, str] | None,
    rows: np.ndarray,
    from_text: bool,
    whole_file: bool,
) -> CheckedBatch:
    """Parse and check every column of `frame` (some or all rows of a file) against the contract.

    `rows` are the rows' spreadsheet numbers in the file, for the report. The
    per-row rules are the same for a batch as for the whole file; only a whole
    file can be empty, and only the whole file (or all rows of each dialogue)
    can be checked for duplicate turns, which is the caller's job.
    """
    problems: list[Problem] = []
    columns = _columns(frame, column_map or {}, problems)
    if whole_file and len(frame) == 0:
        problems.append(Problem(None, "no turns: there are column names but no rows", "empty_file"))
    extras = [n for n in columns if n not in COLUMNS_BY_NAME]
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            problems.append(Problem(name, "required column is missing", "missing_column",
                                    hint=_missing_hint(name, extras), web_hint=_missing_web_hint(name, extras)))

    out: dict[str, pd.Series] = {}
    bad_key = np.zeros(len(frame), bool)  # rows whose key is unusable can't be checked for duplicates
    for col in COLUMNS:
        if col.name not in columns:
            continue
        raw = columns[col.name]
        out[col.name], bads = _PARSERS[col.kind](raw, col.name in KEY_COLUMNS)
        for bad in bads:
            problems.append(_problem(col.name, bad, raw, rows))
            if col.name in KEY_COLUMNS:
                bad_key |= bad.mask
    for name in extras:
        out[name] = _extra(columns[name], numeric=is_stage_signal(name)) if from_text else columns[name]
    return CheckedBatch(out, problems, bad_key)


def _is_sorted(ids: pd.Series, turns: pd.Series) -> bool:
    if len(ids) < 2:
        return True
    d, t = pa.array(ids), turns.to_numpy()
    head, tail = d.slice(0, len(d) - 1), d.slice(1)
    before = pc.less(head, tail).to_numpy(zero_copy_only=False)
    same = pc.equal(head, tail).to_numpy(zero_copy_only=False)
    return bool(np.all(before | (same & (t[:-1] < t[1:]))))


def _columns(frame: pd.DataFrame, column_map: Mapping[str, str], problems: list[Problem]) -> dict[str, pd.Series]:
    """Name → column after `column_map`, first occurrence of a name only; file order kept."""
    names = [str(c) for c in frame.columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(Problem(name, "the column appears more than once in the header", "duplicate_column"))
        seen.add(name)
    renamed = list(names)
    targets: dict[str, str] = {}
    for src, target in column_map.items():
        if src not in seen:
            near = _near(src, names)
            hint = f"Did you mean '{near[0]}'?" if near else f"The columns are: {', '.join(names)}"
            problems.append(Problem(src, f"--map names column '{src}', which is not in the file", "bad_mapping",
                                    hint=hint))
        elif target in targets:
            problems.append(Problem(target, f"two columns are mapped onto '{target}': "
                                            f"'{targets[target]}' and '{src}'", "bad_mapping"))
        elif target in seen and target not in column_map:
            problems.append(Problem(target, f"--map {src}={target} collides with the file's own "
                                            f"column '{target}'", "bad_mapping",
                                    hint=f"Map or drop the existing '{target}' column too"))
        else:
            targets[target] = src
            renamed = [target if n == src else n for n in renamed]
    columns: dict[str, pd.Series] = {}
    for i, name in enumerate(renamed):
        columns.setdefault(name, frame.iloc[:, i].reset_index(drop=True))
    return columns


def _problem(column: str, bad: _Bad, raw: pd.Series, rows: np.ndarray) -> Problem:
    where = np.flatnonzero(bad.mask)
    examples = list(dict.fromkeys(_short(str(v), 40) for v in raw.iloc[where[:50]]))[:MAX_EXAMPLES]
    return Problem(column, bad.reason, bad.code, rows=tuple(rows[where[:MAX_ROWS_KEPT]].tolist()),
                   count=len(where), examples=tuple(examples) if bad.code != "missing_value" else ())


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text(s: pd.Series) -> pd.Series:
    """The column as pandas text ("str" dtype, missing as NaN)."""
    if s.dtype == "str":
        return s
    try:
        return s.astype("str")
    except UnicodeDecodeError:  # bytes cells (a Parquet binary column) that aren't UTF-8
        return s.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v).astype("str")


def _blank(stripped: pd.Series) -> np.ndarray:
    """Missing or empty (given stripped text): the contract's "empty"."""
    return (stripped.isna() | (stripped == "")).to_numpy(bool)


def _is_number_dtype(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _numbers(s: pd.Series, *, locate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, empty mask, not-a-number mask) for a text or numeric column.

    With `locate=False` a column that isn't all numbers returns early with
    the not-a-number mask all True, sparing the slow search for the bad cells.
    """
    if _is_number_dtype(s):
        values = s.to_numpy(dtype=float, na_value=np.nan)
        return values, np.isnan(values), np.zeros(len(s), bool)
    stripped = _text(s).str.strip()
    empty = _blank(stripped)
    cleaned = stripped.mask(empty)
    try:  # Arrow's parser is fast and round-trips floats exactly
        values = pc.cast(pa.array(cleaned), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if not locate:
            return np.full(len(s), np.nan), empty, np.ones(len(s), bool)
        values = pd.to_numeric(cleaned.astype(object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # "nan" typed as text is not a number here: only the empty cell means missing
    return values, empty, ~empty & np.isnan(values)


def _parse_probability(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    values, empty, nan = _numbers(s)
    with np.errstate(invalid="ignore"):
        out_of_range = ~np.isnan(values) & ((values < 0) | (values > 1))
    bads = [_Bad("not_a_number", "expected a number between 0 and 1 (or empty)", nan),
            _Bad("out_of_range", "expected a number between 0 and 1", out_of_range)]
    values = np.where(nan, np.nan, values)
    return pd.Series(values, dtype="float64"), [b for b in bads if b.mask.any()]


def _parse_turn_index(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    if pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans:
        ints = s.to_numpy(dtype=np.int64)
        bad = ints < 0
        empty = np.zeros(len(s), bool)
    else:
        values, empty, nan = _numbers(s)
        with np.errstate(invalid="ignore"):
            bad = ~empty & (nan | (values < 0) | (values != np.round(values)) | (values > 2**53))
        ints = np.where(empty | bad, 0, values).astype(np.int64)
    bads = [_Bad("missing_value", "turn_index can't be empty: it orders the turns", empty),
            _Bad("not_an_integer", "expected a whole number >= 0", bad)]
    return pd.Series(ints, dtype="int64"), [b for b in bads if b.mask.any()]


def _parse_string(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    text = _text(s)
    text = text.mask(text == "")  # the contract's "empty means missing"; other text is kept verbatim
    blank = _blank(text.str.strip()) if key else None
    bads = [_Bad("missing_value", "dialogue_id can't be empty: it identifies the dialogue", blank)] if key else []
    limit = MAX_ID_CHARS if key else MAX_TEXT_CHARS
    lengths = pc.utf8_length(pa.array(text, type=pa.large_string())).to_numpy(zero_copy_only=False)
    too_long = np.nan_to_num(lengths.astype(float), nan=0.0) > limit
    if too_long.any():
        what = "ids" if key else "values"
        bads.append(_Bad("too_long", f"longer than {limit:,} characters (the contract's limit for {what} of this "
                                     "column)", too_long))
    return text, [b for b in bads if b.mask.any()]


def _parse_label(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    text = _text(s).str.strip().str.lower()  # 'ASR ' is surely meant as 'asr'
    text = text.mask(text == "")
    bad = (text.notna() & ~text.isin(LABELS)).to_numpy(bool)
    reason = f"unknown label; expected one of {', '.join(LABELS)} or empty (unlabelled)"
    return text.mask(bad), [_Bad("unknown_label", reason, bad)] if bad.any() else []


def _parse_boolean(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean"), []
    if _is_number_dtype(s):
        values, empty, _ = _numbers(s)
        truth, bad = values == 1, ~empty & ~np.isin(values, (0, 1))
    else:
        text = _text(s).str.strip().str.lower()
        empty = _blank(text)
        truth = text.isin(TRUE_STRINGS).to_numpy(bool)
        bad = ~empty & ~truth & ~text.isin(FALSE_STRINGS).to_numpy(bool)
    out = pd.Series(pd.arrays.BooleanArray(truth, empty | bad))
    reason = "expected true/false, 1/0 or yes/no (or empty)"
    return out, [_Bad("bad_boolean", reason, bad)] if bad.any() else []


def _parse_timestamp(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return out.dt.as_unit(TIMESTAMP_UNIT), []
    stripped = _text(s).str.strip()
    empty = _blank(stripped)
    out = pd.to_datetime(stripped.mask(empty), utc=True, format="ISO8601", errors="coerce")
    bad = ~empty & out.isna().to_numpy(bool)
    reason = "expected an ISO-8601 date-time such as 2024-05-01T12:30:00Z (or empty)"
    return out.dt.as_unit(TIMESTAMP_UNIT), [_Bad("bad_timestamp", reason, bad)] if bad.any() else []


_PARSERS: dict[Kind, Callable[[pd.Series, bool], tuple[pd.Series, list[_Bad]]]] = {
    Kind.STRING: _parse_string,
    Kind.TURN_INDEX: _parse_turn_index,
    Kind.PROBABILITY: _parse_probability,
    Kind.BOOLEAN: _parse_boolean,
    Kind.TIMESTAMP: _parse_timestamp,
    Kind.LABEL: _parse_label,
}


def _extra(s: pd.Series, *, numeric: bool) -> pd.Series:
    """A CSV extra column, passed through as text.

    Only a stage signal (`asr_nbest_margin`, ...) becomes float64, when every
    non-empty cell is a number: it is a model feature. Any other extra stays
    text so it comes out exactly as it came in ("4.10" stays "4.10").
    """
    if numeric:
        values, empty, nan = _numbers(s, locate=False)
        if not nan.any():
            return pd.Series(values, dtype="float64")
    text = _text(s)
    return text.mask(text == "")


def _duplicates(out: Mapping[str, pd.Series], rows: np.ndarray, valid: np.ndarray) -> Problem | None:
    keys = pd.DataFrame({k: out[k] for k in KEY_COLUMNS})
    dup = keys.duplicated(keep=False).to_numpy() & valid
    if dup.any() and not valid.all():  # recount among the valid rows only
        dup = np.zeros(len(keys), bool)
        dup[valid] = keys[valid].duplicated(keep=False).to_numpy()
    if not dup.any():
        return None
    involved = keys[dup].assign(row=rows[dup])
    # group rows of the same turn together, turns in the order they first appear
    involved["first"] = involved.groupby(list(KEY_COLUMNS), sort=False)["row"].transform("min")
    involved = involved.sort_values(["first", "row"])
    turns = involved[list(KEY_COLUMNS)].drop_duplicates().head(MAX_EXAMPLES)
    examples = [f"{d} / {t}" for d, t in turns.itertuples(index=False)]
    return Problem("dialogue_id, turn_index", "the same (dialogue_id, turn_index) appears on more than one row; "
                   "each turn must be unique within its dialogue", "duplicate_turn",
                   rows=tuple(involved["row"].head(MAX_ROWS_KEPT).tolist()), count=int(dup.sum()),
                   examples=tuple(examples))


def normalise_column_name(name: str) -> str:
    """`name` in a canonical spelling: lower case, '_' between words, abbreviations spelled out.

    Two column names with the same canonical spelling are near misses of each other.
    """
    tokens = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_").split("_")
    return "_".join(_ABBREVIATIONS.get(t, t) for t in tokens)


def _near(name: str, candidates: list[str]) -> list[str]:
    """Candidates that look like `name` up to case, spacing, '-' vs '_' and common abbreviations."""
    target = normalise_column_name(name)
    exact = [c for c in candidates if normalise_column_name(c) == target]
    if exact:
        return exact
    by_normal = {normalise_column_name(c): c for c in candidates}
    return [by_normal[m] for m in difflib.get_close_matches(target, list(by_normal), n=2, cutoff=0.8)]


def _missing_hint(name: str, extras: list[str]) -> str:
    near = _near(name, [e for e in extras if e not in COLUMNS_BY_NAME])
    if near:
        return (f"Did you mean '{near[0]}'? Map it with --map '{near[0]}={name}' "
                f"(column_map={{'{near[0]}': '{name}'}})")
    return f"Add the column, or map the column that holds it with --map SOURCE={name} (column_map)"


def _missing_web_hint(name: str, extras: list[str]) -> str:
    """The same advice for someone uploading in the app, where the mapping form replaces `--map`."""
    near = _near(name, [e for e in extras if e not in COLUMNS_BY_NAME])
    if near:
        return (f"The file has a column '{near[0]}' that looks like it: choose it for {name} in the "
                "'Map your columns' form below and load the file again")
    spare = [e for e in extras if e not in COLUMNS_BY_NAME]
    add = f"Add a '{name}' column to the file (its values may be empty where the stage was not logged)"
    if not spare:
        return add
    return f"{add}, or, if another column holds these values, choose it in the 'Map your columns' form below"


# ---------------------------------------------------------------- writing

def write_traces(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV or Parquet (by suffix) atomically, so a crash never leaves a half-written file.

    CSV is UTF-8 without index: booleans as true/false, timestamps as ISO-8601 in
    UTC, missing values as empty cells.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", *PARQUET_SUFFIXES):
        raise FpiError(f"cannot tell the format of '{path}' from its suffix; use .csv or .parquet")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype):
            frame[name] = col.astype("str")
        elif pd.api.types.is_datetime64_any_dtype(col.dtype) and suffix == ".csv":
            utc = (col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")).dt.as_unit("us")
            if not (utc.dt.microsecond.fillna(0) != 0).any():  # whole seconds: no ".000000" noise
                utc = utc.dt.as_unit("s")
            stamps = pc.strftime(pa.array(utc), format="%Y-%m-%dT%H:%M:%SZ")
            frame[name] = pd.Series(stamps, dtype="str", index=frame.index)
    table = pa.Table.from_pandas(frame, preserve_index=False)

    def write(fh: IO[bytes]) -> None:
        if suffix != ".csv":
            pq.write_table(table, fh)
            return
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(frame.columns)
        fh.write(header.getvalue().encode("utf-8"))
        pv.write_csv(table, fh, pv.WriteOptions(include_header=False, quoting_style="needed"))

    _atomic_write(path, write)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write to a temp file beside `path`, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------- describing

def stage_signal_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric extra columns named after a stage (e.g. asr_nbest_margin): later model features."""
    return [str(c) for c in frame.columns if is_stage_signal(str(c)) and _is_number_dtype(frame[c])]


@dataclass(frozen=True)
class TraceSummary:
    """What a loaded trace file holds, for `fpi validate` and the upload page."""

    turns: int
    dialogues: int
    labelled: int
    label_counts: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    locales: dict[str, int] = field(default_factory=dict)
    date_range: tuple[pd.Timestamp, pd.Timestamp] | None = None
    stage_signals: tuple[str, ...] = ()
    other_extras: tuple[str, ...] = ()
    unusable_signals: tuple[str, ...] = ()
    """Stage-prefixed extras whose names LightGBM cannot store: kept, but never model features."""

    def unusable_signal_notes(self) -> list[str]:
        """One line per unusable stage signal: the column, why, and the name to rename it to."""
        return [f"column '{name}' is not used as a model feature: {feature_name_problem(name)}; "
                f"rename it to '{safe_feature_name(name)}' to use it" for name in self.unusable_signals]

    def text(self) -> str:
        lines = [f"{self.turns:,} turns in {self.dialogues:,} dialogues"]
        if self.date_range:
            lines.append(f"from {self.date_range[0]:%Y-%m-%d %H:%M} to {self.date_range[1]:%Y-%m-%d %H:%M} UTC")
        share = self.labelled / self.turns if self.turns else 0.0
        labels = ", ".join(f"{k} {v:,}" for k, v in self.label_counts.items())
        lines.append(f"labelled: {self.labelled:,} ({share:.0%})" + (f": {labels}" if labels else ""))
        for title, counts in (("devices", self.devices), ("locales", self.locales)):
            if counts:
                lines.append(f"{title}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        lines.append("stage signals: " + (", ".join(self.stage_signals) or "none"))
        if self.other_extras:
            lines.append("other columns: " + ", ".join(self.other_extras))
        lines.extend(self.unusable_signal_notes())
        return "\n".join(lines)


def summarize_traces(frame: pd.DataFrame) -> TraceSummary:
    """Counts and ranges of a validated frame; cheap, so the UI can call it on every upload."""
    def counts(name: str) -> dict[str, int]:
        if name not in frame:
            return {}
        return {str(k): int(v) for k, v in frame[name].value_counts().items()}

    labels = frame[LABEL_COLUMN] if LABEL_COLUMN in frame else pd.Series(dtype="str")
    label_counts = {lab: int(n) for lab in LABELS if (n := (labels == lab).sum())}
    date_range = None
    if "timestamp" in frame and frame["timestamp"].notna().any():
        date_range = (frame["timestamp"].min(), frame["timestamp"].max())
    signals = stage_signal_columns(frame)
    others = [str(c) for c in frame.columns if str(c) not in COLUMNS_BY_NAME and str(c) not in signals]
    return TraceSummary(
        turns=len(frame),
        dialogues=int(frame["dialogue_id"].nunique()) if "dialogue_id" in frame else 0,
        labelled=int(labels.notna().sum()),
        label_counts=label_counts,
        devices=counts("device_type"),
        locales=counts("locale"),
        date_range=date_range,
        stage_signals=tuple(signals),
        other_extras=tuple(others),
        unusable_signals=tuple(c for c in others if is_unusable_stage_signal(c)),
    )


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 of the content that ignores row and column order, to tie models and verdicts to data."""
    names = sorted(str(c) for c in frame.columns)
    ordered = frame.set_axis([str(c) for c in frame.columns], axis=1)[names]
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}:{ordered[name].dtype}\n".encode("utf-8"))
    row_hashes = np.sort(pd.util.hash_pandas_object(ordered, index=False).to_numpy())
    digest.update(row_hashes.tobytes())
    return digest.hexdigest()
