"""Write traces as CSV or Parquet, atomically."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fpi.data.files import PARQUET_SUFFIXES, atomic_write
from fpi.errors import FpiError


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

    atomic_write(path, write)
