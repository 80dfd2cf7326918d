"""Verdicts made in a spreadsheet, read into the store all or nothing.

The file (CSV, or Parquet) has `dialogue_id`, `turn_index`, `label` and an
optional `note`; other columns are ignored. Every row is checked before any is
stored, with the same rules as a verdict given in the app; every problem is
reported with its column and rows (1-based as a spreadsheet shows them: the
header is row 1), and then nothing is stored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Collection

import numpy as np
import pandas as pd

from fpi.data.schema import LABELS, MAX_ID_CHARS
from fpi.errors import Problem, TraceError
from fpi.data.write import FORMULA_PREFIXES
from fpi.review.names import clean_name

__all__ = ["REQUIRED", "read_verdict_import"]

REQUIRED: tuple[str, ...] = ("dialogue_id", "turn_index", "label")
MAX_NOTE = 4000


def _unquote(values: pd.Series) -> pd.Series:
    """Undo the quote a CSV export puts before text a spreadsheet would run as a formula."""
    quoted = values.str.startswith("'") & values.str[1:].str.startswith(FORMULA_PREFIXES)
    return values.where(~quoted.fillna(False).astype(bool), values.str[1:])


def _rows(table: pd.DataFrame, mask: pd.Series) -> tuple[int, ...]:
    return tuple(int(r) for r in table.loc[mask, "_row"])


def read_verdict_import(path: str | Path, *, analyst: str, dataset: str,
                        turns: Collection[tuple[str, int]] | None = None) -> list[dict[str, Any]]:
    """The rows to store (keys as `VerdictStore.record`'s arguments), or `TraceError` listing every problem.

    `turns`, when given, are the (dialogue_id, turn_index) of the traces the verdicts are for: a row naming
    another turn is a problem. A turn given twice in the file is a problem too (which row would count?).
    """
    path = Path(path)
    try:
        who = clean_name(analyst)
    except ValueError as exc:
        raise TraceError([Problem(None, f"the analyst name is not usable: {exc}", "bad_analyst",
                                  hint="Pass --analyst with your name or e-mail")], source=str(path)) from None
    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise TraceError([Problem(None, "no such file", "missing_file")], source=str(path)) from None
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise TraceError([Problem(None, f"not a readable CSV or Parquet file ({exc})", "unreadable")],
                         source=str(path)) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise TraceError([Problem(c, "missing required column", "missing_column",
                                  hint="The file needs the columns dialogue_id, turn_index, label (and may have "
                                       "note)") for c in missing], source=str(path))
    table = table.assign(_row=np.arange(len(table)) + 2)
    text = {c: _unquote(table[c].astype("str").fillna("").str.strip()) for c in REQUIRED}
    note = table["note"].astype("str").fillna("").str.strip() if "note" in table.columns else pd.Series(
        "", index=table.index)
    problems: list[Problem] = []
    if table.empty:
        problems.append(Problem(None, "the file has no rows", "empty_file"))
    for column in ("dialogue_id", "label"):
        empty = text[column] == ""
        if empty.any():
            rows = _rows(table, empty)
            problems.append(Problem(column, "empty value", "empty", rows=rows, count=len(rows)))
    long_id = text["dialogue_id"].str.len() > MAX_ID_CHARS
    if long_id.any():
        rows = _rows(table, long_id)
        problems.append(Problem("dialogue_id", f"longer than {MAX_ID_CHARS} characters", "too_long", rows=rows,
                                count=len(rows)))
    turn = pd.to_numeric(text["turn_index"], errors="coerce")
    bad_turn = turn.isna() | (turn < 0) | (turn != turn.round())
    if bad_turn.any():
        rows = _rows(table, bad_turn)
        problems.append(Problem("turn_index", "not a whole number >= 0", "not_integer", rows=rows, count=len(rows),
                                examples=tuple(text["turn_index"][bad_turn].head(3))))
    label = text["label"].str.lower()
    unknown = (label != "") & ~label.isin(LABELS)
    if unknown.any():
        rows = _rows(table, unknown)
        problems.append(Problem("label", "unknown label", "unknown_label", rows=rows, count=len(rows),
                                examples=tuple(dict.fromkeys(text["label"][unknown]))[:3],
                                hint=f"expected one of {', '.join(LABELS)}"))
    long_note = note.str.len() > MAX_NOTE
    if long_note.any():
        rows = _rows(table, long_note)
        problems.append(Problem("note", f"longer than {MAX_NOTE} characters", "too_long", rows=rows,
                                count=len(rows)))
    keys = pd.Series(list(zip(text["dialogue_id"], turn.fillna(-1).astype("int64"))), index=table.index)
    usable = ~bad_turn & (text["dialogue_id"] != "")
    twice = usable & keys.duplicated(keep=False)
    if twice.any():
        rows = _rows(table, twice)
        problems.append(Problem("turn_index", "the same turn is given more than once", "duplicate_turn", rows=rows,
                                count=len(rows), examples=tuple(f"{d} turn {t}" for d, t in
                                                                dict.fromkeys(keys[twice]))[:3],
                                hint="Keep one row per dialogue_id and turn_index"))
    if turns is not None:
        known = set(turns)
        absent = usable & ~keys.isin(known)
        if absent.any():
            rows = _rows(table, absent)
            problems.append(Problem("dialogue_id", "no such turn in the traces", "unknown_turn", rows=rows,
                                    count=len(rows), examples=tuple(f"{d} turn {t}" for d, t in keys[absent].head(3)),
                                    hint="Check the ids, or pass the traces these verdicts are about"))
    if problems:
        raise TraceError(problems, source=str(path))
    return [{"dataset": dataset, "dialogue_id": d, "turn_index": int(t), "label": lab, "analyst": who,
             "note": n or None}
            for d, t, lab, n in zip(text["dialogue_id"], turn.astype("int64"), label, note)]
