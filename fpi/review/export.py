"""Exports: traces with predictions and the latest verdicts, or the verdicts alone, as CSV or Parquet.

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

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fpi.errors import FpiError
from fpi.data.write import write_traces

__all__ = [
    "FORMULA_PREFIXES", "VERDICT_EXPORT_COLUMNS", "export_bytes", "neutralise_cell", "neutralise_formulas", "neutralise_table",
    "with_latest_verdicts", "write_export",
]

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = "^[=+\\-@\t\r]"

VERDICT_EXPORT_COLUMNS: dict[str, str] = {
    "label": "verdict_label",
    "analyst": "verdict_analyst",
    "note": "verdict_note",
    "created_at": "verdict_at",
}
"""Verdict store column -> export column."""


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


def with_latest_verdicts(frame: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """`frame` plus verdict_label, verdict_analyst, verdict_note, verdict_at, matched by (dialogue_id, turn_index).

    `verdicts` holds at most one verdict per turn (e.g. `VerdictStore.latest(dataset=...)`
    or `latest_by_turn()`); turns without one get empty cells. Row order is kept.
    """
    if verdicts.duplicated(["dialogue_id", "turn_index"]).any():
        raise FpiError("with_latest_verdicts needs at most one verdict per (dialogue_id, turn_index); "
                       "pass VerdictStore.latest(dataset=...) or latest_by_turn()")
    picked = verdicts[["dialogue_id", "turn_index", *VERDICT_EXPORT_COLUMNS]].rename(columns=VERDICT_EXPORT_COLUMNS)
    picked = picked.astype({"dialogue_id": "str", "turn_index": "int64"})
    base = frame.drop(columns=[c for c in VERDICT_EXPORT_COLUMNS.values() if c in frame.columns])
    keys = base[["dialogue_id", "turn_index"]].astype({"dialogue_id": "str", "turn_index": "int64"})
    matched = keys.merge(picked, on=["dialogue_id", "turn_index"], how="left", validate="many_to_one")
    out = base.copy()
    for column in VERDICT_EXPORT_COLUMNS.values():
        out[column] = matched[column].to_numpy()
    out["verdict_at"] = pd.to_datetime(out["verdict_at"], utc=True)
    for column in ("verdict_label", "verdict_analyst", "verdict_note"):
        out[column] = out[column].astype("str")
    return out


def _suffix(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise FpiError(f"cannot tell the export format of '{path}' from its suffix; use .csv or .parquet")
    return suffix


def write_export(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write atomically by suffix: CSV with formula-looking text neutralised, or Parquet as is."""
    target = Path(path)
    safe = neutralise_formulas(frame) if _suffix(target) == ".csv" else frame
    write_traces(safe, target)
    return target


def export_bytes(frame: pd.DataFrame, *, fmt: str) -> bytes:
    """The export as bytes, for a download button: fmt "csv" (neutralised) or "parquet"."""
    if fmt not in ("csv", "parquet"):
        raise FpiError(f"unknown export format {fmt!r}; expected csv or parquet")
    with tempfile.TemporaryDirectory(prefix="fpi-export-") as tmp:
        path = write_export(frame, Path(tmp) / f"export.{fmt}")
        return path.read_bytes()
