"""Write traces as CSV or Parquet, atomically; exports with formula-looking text neutralised.

CSV exports are opened in spreadsheets, which run a cell starting with `=`,
`+`, `-` or `@` (and, in some, tab or carriage return) as a formula: a trace
text like `=HYPERLINK("http://evil", "click")` would become a live link. Text
cells (and column names, and binary cells written as text) that start so get a
leading single quote (the OWASP advice), which spreadsheets show as text. Every
CSV fpi writes from traces goes through here: exports, `fpi predict -o x.csv`
(in memory and out of core) and `fpi queue`. Numeric columns are left alone: -0.5 stays a number.
Parquet keeps every value exactly (nothing runs formulas on it).
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fpi.data.files import atomic_write, format_of
from fpi.errors import FpiError


def write_traces(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write CSV or Parquet (by suffix) atomically, so a crash never leaves a half-written file.

    CSV is UTF-8 without index: booleans as true/false, timestamps as ISO-8601 in
    UTC, missing values as empty cells.
    """
    path = Path(path)
    fmt = format_of(path)
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype):
            frame[name] = col.astype("str")
        elif pd.api.types.is_datetime64_any_dtype(col.dtype) and fmt == "csv":
            utc = (col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")).dt.as_unit("us")
            if not (utc.dt.microsecond.fillna(0) != 0).any():  # whole seconds: no ".000000" noise
                utc = utc.dt.as_unit("s")
            stamps = pc.strftime(pa.array(utc), format="%Y-%m-%dT%H:%M:%SZ")
            frame[name] = pd.Series(stamps, dtype="str", index=frame.index)
    table = pa.Table.from_pandas(frame, preserve_index=False)

    def write(fh: IO[bytes]) -> None:
        if fmt != "csv":
            pq.write_table(table, fh)
            return
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(frame.columns)
        fh.write(header.getvalue().encode("utf-8"))
        pv.write_csv(table, fh, pv.WriteOptions(include_header=False, quoting_style="needed"))

    atomic_write(path, write)


FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


_FORMULA_START = "^[=+\\-@\t\r]"


def neutralise_cell(value: object) -> object:
    """`value` with a leading quote if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _is_text(series: pd.Series) -> bool:
    return (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object
            or isinstance(series.dtype, pd.CategoricalDtype))


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose header and text cells cannot be run as spreadsheet formulas; numbers untouched.

    Column names are cells too (a column named `=HYPERLINK(...)` is a live header), and
    bytes cells (a Parquet binary column) are written as their text, so both are covered:
    bytes become UTF-8 text (undecodable bytes as U+FFFD) before the check.
    """
    out = frame.copy()
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if column.dtype == object and column.map(lambda v: isinstance(v, (bytes, bytearray))).any():
            column = column.map(lambda v: bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, bytearray))
                                else v)
            out.isetitem(i, column)
    for name in out.columns:
        column = out[name]
        if not _is_text(column) or pd.api.types.is_bool_dtype(column.dtype):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype("object")
        text = column.astype("str")
        # only cells that really are text (an object column may mix in numbers)
        is_text = column.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).to_numpy(dtype=bool) & is_text
        if risky.any():
            safe = column.astype("object").where(~risky, "'" + text)
            out[name] = safe.astype(column.dtype) if pd.api.types.is_string_dtype(column.dtype) else safe
    return out


def neutralise_table(table: pa.Table) -> pa.Table:
    """`neutralise_formulas` for an Arrow table (the out-of-core CSV writer's batches): header and
    text or binary cells starting like a formula get a leading quote; other columns untouched."""
    names = [str(neutralise_cell(n)) for n in table.column_names]
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            try:
                column = pc.cast(column, pa.large_string())
            except pa.ArrowInvalid:  # not UTF-8: the text a reader would see
                column = pa.chunked_array([pa.array([None if v is None else v.decode("utf-8", "replace")
                                                     for v in column.to_pylist()], pa.large_string())])
            kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            risky = pc.fill_null(pc.match_substring_regex(column, _FORMULA_START), False)
            quoted = pc.binary_join_element_wise(pa.scalar("'", kind), column, pa.scalar("", kind))
            column = pc.if_else(risky, quoted, column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=names)


def write_export(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write atomically by suffix: CSV with formula-looking text neutralised, or Parquet as is."""
    target = Path(path)
    safe = neutralise_formulas(frame) if format_of(target, what="export format") == "csv" else frame
    write_traces(safe, target)
    return target


def export_bytes(frame: pd.DataFrame, *, fmt: str) -> bytes:
    """The export as bytes, for a download button: fmt "csv" (neutralised) or "parquet"."""
    if fmt not in ("csv", "parquet"):
        raise FpiError(f"unknown export format {fmt!r}; expected csv or parquet")
    with tempfile.TemporaryDirectory(prefix="fpi-export-") as tmp:
        path = write_export(frame, Path(tmp) / f"export.{fmt}")
        return path.read_bytes()
