"""Check a frame of traces against the contract, column by column, collecting every problem.

Row numbers follow a spreadsheet: the header is row 1 and the first turn row 2,
counted in the order the rows came in (before sorting). Parquet files and
in-memory frames use the same convention: position in the frame + 2.

Timestamps without a UTC offset are read as UTC; all come out as UTC, in microseconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fpi.data.columns import is_number_dtype, missing_hint, missing_web_hint, near_columns
from fpi.errors import Problem, TraceError
from fpi.data.schema import (
    COLUMNS, COLUMNS_BY_NAME, FALSE_STRINGS, KEY_COLUMNS, LABELS, MAX_ID_CHARS, MAX_TEXT_CHARS, REQUIRED_COLUMNS, TRUE_STRINGS, Kind, is_stage_signal,
)


MAX_ROWS_KEPT = 50  # rows listed per problem; `count` always has the full number
MAX_EXAMPLES = 3
TIMESTAMP_UNIT = "us"  # what pandas 3 parses ISO strings to; one unit everywhere (finer digits are dropped)


def validate_traces(
    frame: pd.DataFrame, *, column_map: Mapping[str, str] | None = None, source: str | None = None
) -> pd.DataFrame:
    """Check an in-memory frame (cells as text or already typed) and return it typed and sorted.

    Extra columns are returned unchanged. Naive timestamps are read as UTC.
    """
    return check_frame(frame, column_map, source, from_text=False)


@dataclass
class _Bad:
    code: str
    reason: str
    mask: np.ndarray


def check_frame(
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
        dup = duplicate_problems(out, rows, ~bad_key)
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
                                    hint=missing_hint(name, extras), web_hint=missing_web_hint(name, extras)))

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
        out[name] = extra_problems(columns[name], numeric=is_stage_signal(name)) if from_text else columns[name]
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
            near = near_columns(src, names)
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
    examples = list(dict.fromkeys(shorten(str(v), 40) for v in raw.iloc[where[:50]]))[:MAX_EXAMPLES]
    return Problem(column, bad.reason, bad.code, rows=tuple(rows[where[:MAX_ROWS_KEPT]].tolist()),
                   count=len(where), examples=tuple(examples) if bad.code != "missing_value" else ())


def shorten(text: str, n: int) -> str:
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


def as_numbers(s: pd.Series, *, locate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float values, empty mask, not-a-number mask) for a text or numeric column.

    With `locate=False` a column that isn't all numbers returns early with
    the not-a-number mask all True, sparing the slow search for the bad cells.
    """
    if is_number_dtype(s):
        values = s.to_numpy(dtype=float, na_value=np.nan)
        return values, np.isnan(values), np.zeros(len(s), bool)
    # In Arrow throughout (as pandas' own str.strip is): no pandas masks on text, twice as fast.
    stripped = pc.utf8_trim_whitespace(pa.array(_text(s)))
    blank = pc.fill_null(pc.equal(stripped, ""), True)
    empty = blank.to_numpy(zero_copy_only=False)
    cleaned = pc.if_else(blank, pa.scalar(None, stripped.type), stripped)
    try:  # Arrow's parser is fast and round-trips floats exactly
        values = pc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if not locate:
            return np.full(len(s), np.nan), empty, np.ones(len(s), bool)
        values = pd.to_numeric(pd.Series(cleaned.to_pylist(), dtype=object), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan)
    # "nan" typed as text is not a number here: only the empty cell means missing
    return values, empty, ~empty & np.isnan(values)


def _parse_probability(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    values, empty, nan = as_numbers(s)
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
        values, empty, nan = as_numbers(s)
        with np.errstate(invalid="ignore"):
            bad = ~empty & (nan | (values < 0) | (values != np.round(values)) | (values > 2**53))
        ints = np.where(empty | bad, 0, values).astype(np.int64)
    bads = [_Bad("missing_value", "turn_index can't be empty: it orders the turns", empty),
            _Bad("not_an_integer", "expected a whole number >= 0", bad)]
    return pd.Series(ints, dtype="int64"), [b for b in bads if b.mask.any()]


def _without_empty(text: pd.Series) -> pd.Series:
    """The contract's "empty means missing": "" becomes NaN, other text is kept verbatim (in Arrow: 4x
    faster than `text.mask(text == "")`, the same column)."""
    values = pa.array(text)
    kept = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    return pd.Series(kept, dtype=text.dtype, index=text.index, name=text.name)


def _parse_string(s: pd.Series, key: bool) -> tuple[pd.Series, list[_Bad]]:
    text = _without_empty(_text(s))
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
    if is_number_dtype(s):
        values, empty, _ = as_numbers(s)
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


def extra_problems(s: pd.Series, *, numeric: bool) -> pd.Series:
    """A CSV extra column, passed through as text.

    Only a stage signal (`asr_nbest_margin`, ...) becomes float64, when every
    non-empty cell is a number: it is a model feature. Any other extra stays
    text so it comes out exactly as it came in ("4.10" stays "4.10").
    """
    if numeric:
        values, empty, nan = as_numbers(s, locate=False)
        if not nan.any():
            return pd.Series(values, dtype="float64")
    return _without_empty(_text(s))


def duplicate_problems(out: Mapping[str, pd.Series], rows: np.ndarray, valid: np.ndarray) -> Problem | None:
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
