"""The overview's numbers for a scored Parquet file too big for memory, computed by DuckDB.

Same functions, same filters and the same DataFrames / dataclasses as the pandas
versions in `fpi.analysis.dashboard`, but they take the path of a scored Parquet file
(as `fpi predict` writes it) and let DuckDB scan only the columns each needs,
so a 10M-turn file is summarised in seconds without being loaded.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fpi.analysis.dashboard import BREAKDOWN_DIMENSIONS, MISSING, Kpis, Overview, SankeyData, pick_frequency, sankey_from_counts
from fpi.data.schema import DEFECT_LABELS, LABEL_COLUMN, LABELS, PREDICTED_COLUMN, PROBABILITY_COLUMNS
from fpi.analysis.filtering import FilterOptions, Filters
from fpi.errors import ScoredFileError

__all__ = [
    "BREAKDOWN_DIMENSIONS", "GLOB_CHARACTERS", "breakdown", "check_scored", "cohort_frame", "confidence_distribution", "defect_rate_over_time",
    "filter_options", "kpis", "label_distribution", "matching_count", "matching_turns", "overview", "sankey",
    "scored_columns",
]

_TRUNC = {"h": "hour", "D": "day", "W": "week"}  # DuckDB's week starts on Monday, as pandas' "W" periods do


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scored_columns(path: str | Path) -> tuple[str, ...]:
    """The column names of a Parquet file (from its footer only)."""
    with _connect() as con:
        return tuple(r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)",
                                               [str(_literal_path(path))]).fetchall())


GLOB_CHARACTERS = frozenset("*?[]{}")
"""What DuckDB's `read_parquet` expands as a glob: a file named `*.parquet` would pull in every
Parquet file beside it, symlinks to files outside the data folder included."""


def _literal_path(path: str | Path) -> Path:
    """`path` resolved (symlinks followed), if DuckDB will read it as one literal file; else `ScoredFileError`.

    Every path that reaches `read_parquet` goes through here: DuckDB has no switch to turn
    globbing off, so a name with glob characters is refused, never escaped.
    """
    text = str(path)
    try:
        if "\x00" in text:
            raise ValueError("the path contains a NUL character")
        resolved = Path(text).expanduser().resolve()
        resolved.stat()
    except FileNotFoundError:
        raise ScoredFileError("no such file. Give the path of a Parquet file written by `fpi predict`.",
                              path=_shown(text)) from None
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, a name too long, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScoredFileError(f"cannot open this path ({reason}). Give the path of a Parquet file written "
                              "by `fpi predict`.", path=_shown(text)) from None
    bad = sorted(GLOB_CHARACTERS & set(str(resolved)))
    if bad:
        raise ScoredFileError(f"the path contains {' '.join(bad)}, which DuckDB would expand as a pattern over "
                              "other files. Rename the file (or its folder) without these characters.",
                              path=str(resolved))
    return resolved


def _shown(text: str, limit: int = 200) -> str:
    """A path as it can be shown in a message: control characters visible, at most `limit` characters."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def check_scored(path: str | Path, *, root: str | Path | None = None) -> int:
    """The number of turns of a Parquet file scored by `fpi predict`, read from its footer only.

    Raises `ScoredFileError` when the file is missing, not Parquet, lacks prediction
    columns, or lies outside `root` (the app lets users open files only under FPI_DATA_DIR,
    not anywhere the server can read).
    """
    path = _literal_path(path)
    if root is not None and not path.is_relative_to(Path(root).expanduser().resolve()):
        raise ScoredFileError(f"outside the data folder {Path(root).resolve()}. Put the file there, or start the "
                              "app with FPI_DATA_DIR set to its folder.", path=str(path))
    if not path.is_file():
        raise ScoredFileError("no such file. Give the path of a Parquet file written by `fpi predict`.",
                              path=str(path))
    try:
        metadata = pq.read_metadata(path)
    except (OSError, ValueError) as exc:
        raise ScoredFileError(f"not a readable Parquet file ({exc}). Score the traces with "
                              "`fpi predict traces.csv -o scored.parquet` and open that.", path=str(path)) from exc
    schema = metadata.schema.to_arrow_schema()
    present = set(schema.names)
    missing = [c for c in (PREDICTED_COLUMN, *PROBABILITY_COLUMNS) if c not in present]
    if missing:
        raise ScoredFileError(
            "has no prediction columns " + ", ".join(missing) + ". It is not scored: run "
            "`fpi predict <file> -o scored.parquet` on it and open the output.", path=str(path), missing=missing)
    problems = scored_schema_problems(schema)
    if problems:
        raise ScoredFileError("does not have the columns `fpi predict` writes: " + "; ".join(problems)
                              + ". Score the traces with `fpi predict traces.csv -o scored.parquet` and open "
                              "that file.", path=str(path),
                              missing=[p.split("'")[1] for p in problems if p.endswith("is missing")])
    return int(metadata.num_rows)


def scored_schema_problems(schema: pa.Schema) -> list[str]:
    """Every way a scored file's columns differ from what the overview's queries read, one line each
    (column, type found, type needed): checked on the footer before any page runs a query."""
    from fpi.data.schema import COLUMNS, Kind

    def text(kind: pa.DataType) -> bool:
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)

    needed: dict[str, tuple[str, Any]] = {PREDICTED_COLUMN: ("text", text)}
    for column in PROBABILITY_COLUMNS:
        needed[column] = ("a number", pa.types.is_floating)
    checks = {Kind.STRING: ("text", text), Kind.LABEL: ("text", text),
              Kind.TURN_INDEX: ("an integer", pa.types.is_integer),
              Kind.PROBABILITY: ("a number", lambda k: pa.types.is_floating(k) or pa.types.is_integer(k)),
              Kind.BOOLEAN: ("true/false", pa.types.is_boolean), Kind.TIMESTAMP: ("a timestamp", pa.types.is_timestamp)}
    for column in COLUMNS:
        if column.required or column.name in schema.names:
            needed[column.name] = checks[column.kind]
    problems = []
    for name, (what, ok) in needed.items():
        if name not in schema.names:
            problems.append(f"'{name}' is missing")
        elif not ok(schema.field(name).type):
            problems.append(f"'{name}' is {schema.field(name).type}, expected {what}")
    return problems


def cohort_frame(path: str | Path, *, max_levels: int = 50, head_rows: int = 20_000) -> pd.DataFrame:
    """The columns cohort discovery uses, read from a scored Parquet file into a compact frame.

    Text columns that could be cohorts (not ids, free text, labels or probabilities,
    as `fpi.analysis.cohorts.candidate_columns` decides) whose first `head_rows` turns show at
    most `max_levels` values, plus `predicted_failure_point`; all as categoricals,
    read dictionary-encoded, so a million turns take a few MB instead of the whole file.
    Discovery still checks each column's full cardinality.
    """
    from fpi.analysis.cohorts import NEVER_COHORTS  # fpi.analysis.cohorts is the one place that says what a cohort column is

    parquet = pq.ParquetFile(str(path))
    schema = parquet.schema_arrow
    if PREDICTED_COLUMN not in schema.names:
        raise ScoredFileError(f"has no column {PREDICTED_COLUMN}. Score it with `fpi predict <file> -o scored.parquet`.",
                              path=str(path), missing=[PREDICTED_COLUMN])

    def is_text(kind: pa.DataType) -> bool:
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)

    texts = [f.name for f in schema if is_text(f.type) and f.name not in NEVER_COHORTS
             and f.name != PREDICTED_COLUMN and not f.name.startswith("p_")]
    # A free-text or id column shows itself in the first rows: never read it whole.
    if texts and parquet.metadata.num_rows:
        head = next(parquet.iter_batches(batch_size=head_rows, columns=texts))
        texts = [name for name in texts
                 if len(pc.unique(head.column(name))) <= max_levels]
    columns = [*texts, PREDICTED_COLUMN]
    table = pq.read_table(str(path), columns=columns, read_dictionary=columns)
    return table.to_pandas()


class _Scan:
    """One scored Parquet file seen through `filters`: a FROM ... WHERE ... and its parameters."""

    def __init__(self, path: str | Path, filters: Filters | None) -> None:
        self.path = str(_literal_path(path))  # never a pattern DuckDB would expand
        self.columns = set(scored_columns(self.path))
        clauses: list[str] = []
        params: list[Any] = [self.path]
        filters = filters or Filters()
        if filters.date_range is not None and "timestamp" in self.columns:
            start, end = filters.date_range
            clauses.append("timestamp >= CAST(? AS TIMESTAMPTZ) AND timestamp < CAST(? AS TIMESTAMPTZ)")
            params += [f"{start.isoformat()} 00:00:00+00", f"{(end + timedelta(days=1)).isoformat()} 00:00:00+00"]
        for values, column in ((filters.devices, "device_type"), (filters.locales, "locale"),
                               (filters.domains, "nlu_domain"), (filters.predicted, PREDICTED_COLUMN)):
            if values and column in self.columns:
                clauses.append(f"list_contains(?, {_q(column)})")
                params.append(list(values))
        self.where = " AND ".join(clauses) or "TRUE"
        self.params = params

    def query(self, select: str, *, tail: str = "", extra_where: str = "", params: Sequence[Any] = ()) -> pd.DataFrame:
        where = self.where + (f" AND {extra_where}" if extra_where else "")
        sql = f"SELECT {select} FROM read_parquet(?) WHERE {where} {tail}"
        with _connect() as con:
            return con.sql(sql, params=[*self.params, *params]).to_arrow_table().to_pandas()

    def has(self, column: str) -> bool:
        return column in self.columns


# ---------------------------------------------------------------- filters and headline numbers

def filter_options(path: str | Path) -> FilterOptions:
    scan = _Scan(path, None)
    bounds = None
    if scan.has("timestamp"):
        row = scan.query("min(timestamp) AS lo, max(timestamp) AS hi")
        lo, hi = row["lo"].iloc[0], row["hi"].iloc[0]
        if pd.notna(lo):
            bounds = (pd.Timestamp(lo).tz_convert("UTC").date(), pd.Timestamp(hi).tz_convert("UTC").date())

    def levels(column: str) -> tuple[str, ...]:
        if not scan.has(column):
            return ()
        values = scan.query(f"DISTINCT CAST({_q(column)} AS VARCHAR) AS v", extra_where=f"{_q(column)} IS NOT NULL")
        return tuple(sorted(values["v"].tolist()))

    present = set(levels(PREDICTED_COLUMN))
    return FilterOptions(date_bounds=bounds, devices=levels("device_type"), locales=levels("locale"),
                         domains=levels("nlu_domain"), predicted=tuple(label for label in LABELS if label in present))


def kpis(path: str | Path, filters: Filters | None = None) -> Kpis:
    scan = _Scan(path, filters)
    defect = f"coalesce({_q(PREDICTED_COLUMN)} <> 'correct', TRUE)"
    label = _q(LABEL_COLUMN) if scan.has(LABEL_COLUMN) else "NULL"
    row = scan.query(
        f"count(*) AS turns, count(DISTINCT dialogue_id) AS dialogues, "
        f"coalesce(sum(CAST({defect} AS INTEGER)), 0) AS defects, "
        f"count(DISTINCT dialogue_id) FILTER (WHERE {defect}) AS dialogues_with_defect, "
        f"count({label}) AS labelled, "
        f"avg(CAST(coalesce({_q(PREDICTED_COLUMN)} = {label}, FALSE) AS DOUBLE)) FILTER (WHERE {label} IS NOT NULL) AS agreement"
    ).iloc[0]
    turns = int(row["turns"])
    labelled = int(row["labelled"])
    return Kpis(
        turns=turns,
        dialogues=int(row["dialogues"]),
        defects=int(row["defects"]),
        defect_rate=float(row["defects"]) / turns if turns else float("nan"),
        dialogues_with_defect=int(row["dialogues_with_defect"]),
        labelled=labelled,
        labelled_share=labelled / turns if turns else float("nan"),
        agreement=float(row["agreement"]) if labelled else None,
    )


def _counts(scan: _Scan, column: str) -> pd.Series:
    if not scan.has(column):
        return pd.Series(0, index=list(LABELS))
    table = scan.query(f"{_q(column)} AS label, count(*) AS n", tail="GROUP BY 1",
                       extra_where=f"{_q(column)} IS NOT NULL")
    return table.set_index("label")["n"].reindex(list(LABELS), fill_value=0)


def label_distribution(path: str | Path, filters: Filters | None = None) -> pd.DataFrame:
    """As `fpi.analysis.dashboard.label_distribution`: label, predicted, share, labelled."""
    scan = _Scan(path, filters)
    predicted, human = _counts(scan, PREDICTED_COLUMN), _counts(scan, LABEL_COLUMN)
    total = int(scan.query("count(*) AS n")["n"].iloc[0])
    return pd.DataFrame({
        "label": list(LABELS),
        "predicted": predicted.to_numpy(dtype=int),
        "share": predicted.to_numpy(dtype=float) / max(1, total),
        "labelled": human.to_numpy(dtype=int),
    })


def sankey(path: str | Path, filters: Filters | None = None) -> SankeyData:
    """As `fpi.analysis.dashboard.sankey_flows`, from the predicted-label counts."""
    return sankey_from_counts(_counts(_Scan(path, filters), PREDICTED_COLUMN))


# ---------------------------------------------------------------- over time

def defect_rate_over_time(path: str | Path, filters: Filters | None = None, *, freq: str | None = None) -> pd.DataFrame:
    """As `fpi.analysis.dashboard.defect_rate_over_time`: period, label, turns, count, rate (long format)."""
    columns = ["period", "label", "turns", "count", "rate"]
    scan = _Scan(path, filters)
    if not scan.has("timestamp"):
        return pd.DataFrame(columns=columns)
    bounds = scan.query("min(timestamp) AS lo, max(timestamp) AS hi")
    if pd.isna(bounds["lo"].iloc[0]):
        return pd.DataFrame(columns=columns)
    freq = freq or pick_frequency(pd.Timestamp(bounds["lo"].iloc[0]), pd.Timestamp(bounds["hi"].iloc[0]))
    if freq not in _TRUNC:
        raise ValueError(f"freq must be one of {', '.join(_TRUNC)}, got {freq!r}")
    table = scan.query(
        f"date_trunc('{_TRUNC[freq]}', timezone('UTC', timestamp)) AS period, {_q(PREDICTED_COLUMN)} AS label, "
        "count(*) AS n", tail="GROUP BY 1, 2", extra_where="timestamp IS NOT NULL")
    wide = table.pivot_table(index="period", columns="label", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=list(LABELS), fill_value=0).sort_index()
    turns = wide.sum(axis=1)
    wide["all defects"] = wide[list(DEFECT_LABELS)].sum(axis=1)
    rows = []
    for label in ["all defects", *DEFECT_LABELS]:
        rows.append(pd.DataFrame({"period": wide.index, "label": label, "turns": turns.to_numpy(dtype=int),
                                  "count": wide[label].to_numpy(dtype=int)}))
    long = pd.concat(rows, ignore_index=True)
    long["rate"] = long["count"] / long["turns"]
    return long[columns]


# ---------------------------------------------------------------- cohorts and confidence

def breakdown(path: str | Path, column: str, filters: Filters | None = None, *, top: int = 25) -> pd.DataFrame:
    """As `fpi.analysis.dashboard.breakdown`: cohort, turns, defects, defect_rate, top_failure_point, rate_<label>."""
    scan = _Scan(path, filters)
    cohort = f"coalesce(CAST({_q(column)} AS VARCHAR), '{MISSING}')" if scan.has(column) else f"'{MISSING}'"
    per_label = ", ".join(f"count(*) FILTER (WHERE {_q(PREDICTED_COLUMN)} = '{label}') AS {_q(label)}" for label in LABELS)
    table = scan.query(f"{cohort} AS cohort, {per_label}", tail="GROUP BY 1")
    table["turns"] = table[list(LABELS)].sum(axis=1)
    table = table.sort_values(["turns", "cohort"], ascending=[False, True]).head(top)
    turns = table["turns"].to_numpy(dtype=int)
    defect_counts = table[list(DEFECT_LABELS)]
    defects = defect_counts.sum(axis=1).to_numpy(dtype=int)
    result = pd.DataFrame({
        "cohort": table["cohort"].astype(str).to_numpy(),
        "turns": turns,
        "defects": defects,
        "defect_rate": defects / np.clip(turns, 1, None),
    })
    worst = np.asarray(DEFECT_LABELS, dtype=object)[defect_counts.to_numpy().argmax(axis=1)] if len(table) else []
    result["top_failure_point"] = np.where(defects > 0, worst, "") if len(table) else []
    for label in DEFECT_LABELS:
        result[f"rate_{label}"] = table[label].to_numpy(dtype=float) / np.clip(turns, 1, None)
    return result.sort_values(["defect_rate", "turns"], ascending=[False, False], ignore_index=True, kind="stable")


def _confidence_sql() -> str:
    return "greatest(" + ", ".join(_q(c) for c in PROBABILITY_COLUMNS) + ")"


def confidence_distribution(path: str | Path, filters: Filters | None = None) -> pd.DataFrame:
    """As `fpi.analysis.dashboard.confidence_distribution`: label, turns, q05, q25, median, q75, q95, mean."""
    scan = _Scan(path, filters)
    conf = _confidence_sql()
    table = scan.query(
        f"{_q(PREDICTED_COLUMN)} AS label, count(*) AS turns, "
        f"quantile_cont({conf}, [0.05, 0.25, 0.5, 0.75, 0.95]) AS q, avg({conf}) AS mean",
        tail="GROUP BY 1", extra_where=f"{_q(PREDICTED_COLUMN)} IS NOT NULL")
    rows = []
    by_label = {r["label"]: r for r in table.to_dict("records")}
    for label in LABELS:
        if label not in by_label:
            continue
        r = by_label[label]
        q05, q25, median, q75, q95 = (float(v) for v in r["q"])
        rows.append({"label": label, "turns": int(r["turns"]), "q05": q05, "q25": q25, "median": median,
                     "q75": q75, "q95": q95, "mean": float(r["mean"])})
    return pd.DataFrame(rows, columns=["label", "turns", "q05", "q25", "median", "q75", "q95", "mean"])


def _matching_where(scan: _Scan, predicted: str | None, cohort: tuple[str, str] | None,
                    defects_only: bool) -> tuple[str, list[Any]]:
    where, params = [], []
    if defects_only:
        where.append(f"coalesce({_q(PREDICTED_COLUMN)} <> 'correct', TRUE)")
    if predicted is not None:
        where.append(f"{_q(PREDICTED_COLUMN)} = ?")
        params.append(predicted)
    if cohort is not None:
        column, value = cohort
        expr = f"coalesce(CAST({_q(column)} AS VARCHAR), '{MISSING}')" if scan.has(column) else f"'{MISSING}'"
        where.append(f"{expr} = ?")
        params.append(value)
    return " AND ".join(where), params


def matching_turns(path: str | Path, filters: Filters | None = None, *, predicted: str | None = None,
                   cohort: tuple[str, str] | None = None, defects_only: bool = False,
                   limit: int = 2000) -> pd.DataFrame:
    """As `fpi.analysis.dashboard.matching_turns` (most confident first), reading only the `limit` rows shown.

    `defects_only` keeps the turns not predicted 'correct', as the overview's defect tables do.
    """
    from fpi.analysis.dashboard import TURN_COLUMNS

    scan = _Scan(path, filters)
    where, params = _matching_where(scan, predicted, cohort, defects_only)
    shown = [c for c in TURN_COLUMNS if c == "confidence" or scan.has(c)]
    select = ", ".join(f"{_confidence_sql()} AS confidence" if c == "confidence" else _q(c) for c in shown)
    return scan.query(select, extra_where=where,
                      tail="ORDER BY confidence DESC, dialogue_id, turn_index LIMIT ?", params=[*params, limit])


def matching_count(path: str | Path, filters: Filters | None = None, *, predicted: str | None = None,
                   cohort: tuple[str, str] | None = None, defects_only: bool = False) -> int:
    """How many turns `matching_turns` would list without its limit."""
    scan = _Scan(path, filters)
    where, params = _matching_where(scan, predicted, cohort, defects_only)
    return int(scan.query("count(*) AS n", extra_where=where, params=params)["n"].iloc[0])


def overview(path: str | Path, filters: Filters | None = None) -> Overview:
    """Everything on the overview page except the cohort breakdown, as `fpi.analysis.dashboard.overview`."""
    return Overview(
        kpis=kpis(path, filters),
        distribution=label_distribution(path, filters),
        sankey=sankey(path, filters),
        over_time=defect_rate_over_time(path, filters),
        confidence=confidence_distribution(path, filters),
    )
