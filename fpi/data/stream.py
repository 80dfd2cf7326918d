"""Read a trace file too big for memory as a stream of checked batches.

The rules are `fpi.data.traces.load_traces`'s, applied batch by batch with
`fpi.data.traces.check_batch`; row numbers in problems are still the file's
spreadsheet rows (the header is row 1), counted across batches, and rows the
CSV reader rejected (wrong number of fields) are skipped in the count as they
are in memory. What a batch cannot know is left to the caller: whether the
file has any rows at all, and duplicate turns (which need all rows of a
dialogue together: see `fpi.scoring.partition`).

CSV is read serially (`pyarrow.csv.open_csv` with one thread) because only
then does the reader say which record a rejected row was.
"""
from __future__ import annotations

import codecs
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fpi.errors import Problem, TraceError
from fpi.data.check import MAX_EXAMPLES, MAX_ROWS_KEPT, CheckedBatch, shorten, check_batch
from fpi.data.files import PARQUET_MAGIC, PARQUET_SUFFIXES
from fpi.data.traces import parquet_column_problems, sniff_csv

__all__ = ["TraceBatch", "TraceStream", "merge_problems"]

HEAD_BYTES = 65536
BLOCK_BYTES = 1 << 22
"""CSV block size. The reader reads ahead about 32 blocks whatever the file size,
so this bounds its buffer (~130 MB); blocks are gathered into batches of `batch_rows`."""


@dataclass
class TraceBatch:
    """Consecutive rows of the file, checked."""

    checked: CheckedBatch
    rows: np.ndarray
    """Spreadsheet row number of each row in the file."""
    raw: pa.Table
    """The cells as read (CSV: text, an empty cell missing), one column per distinct name after the column map."""


@dataclass
class TraceStream:
    """A CSV or Parquet trace file, read `batch_rows` rows (about) at a time.

    Iterate it once; afterwards `file_problems()` holds what only shows at the
    end (rows with the wrong number of fields) and `rows_read` the rows seen.
    """

    path: Path
    column_map: Mapping[str, str] = field(default_factory=dict)
    batch_rows: int = 200_000
    fmt: str | None = None
    rows_read: int = 0
    bytes_total: int = 0
    _bad_rows: array = field(default_factory=lambda: array("q"))
    _bad_examples: list[str] = field(default_factory=list)
    _header_problems: list[Problem] = field(default_factory=list)
    _width: int = 0
    _counter: _CountingFile | None = None
    _parquet_rows: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        try:
            self.bytes_total = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            raise TraceError([Problem(None, f"cannot read the file ({exc.strerror or exc})", "unreadable")],
                             source=str(self.path)) from exc
        if self.fmt is not None and self.fmt.lower() not in ("csv", "parquet"):
            raise ValueError(f"fmt must be 'csv' or 'parquet', got {self.fmt!r}")
        if self.fmt is None:
            if head[:4] == PARQUET_MAGIC:
                self.fmt = "parquet"
            elif self.path.name.lower().endswith(PARQUET_SUFFIXES):
                self._fail("not_parquet", "the name says Parquet but the content is not a Parquet file")
            else:
                self.fmt = "csv"
        self.fmt = self.fmt.lower()
        self._head = head

    # ------------------------------------------------------------ facts

    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def fraction_read(self) -> float:
        """Share of the file read so far, for progress."""
        if self.fmt == "parquet":
            return self.rows_read / self._parquet_rows if self._parquet_rows else 0.0
        if self._counter is None or not self.bytes_total:
            return 0.0
        return min(1.0, self._counter.position / self.bytes_total)

    def estimated_rows(self, first: TraceBatch | None) -> int:
        """Rows in the file: exact for Parquet, from the first batch's bytes per row for CSV."""
        if self.fmt == "parquet":
            return self._parquet_rows
        if first is None or first.raw.num_rows == 0:
            return 0
        per_row = max(1.0, first.raw.nbytes / first.raw.num_rows)
        return int(self.bytes_total / per_row) + 1

    def file_problems(self) -> list[Problem]:
        """Problems of the whole file found while reading (call after iterating)."""
        problems = list(self._header_problems)
        if len(self._bad_rows):
            numbers = np.sort(np.frombuffer(self._bad_rows, dtype=np.int64))
            problems.append(Problem(
                None, f"wrong number of fields (the header has {self._width})", "bad_row",
                rows=tuple(numbers[:MAX_ROWS_KEPT].tolist()), count=len(numbers),
                examples=tuple(self._bad_examples[:MAX_EXAMPLES]),
                hint="Quote values that contain commas or line breaks"))
        return problems

    # ------------------------------------------------------------ reading

    def __iter__(self) -> Iterator[TraceBatch]:
        if self.fmt == "parquet":
            yield from self._parquet()
        else:
            yield from self._csv()

    def _fail(self, code: str, reason: str, hint: str | None = None) -> None:
        raise TraceError([Problem(None, reason, code, hint=hint)], source=self.source)

    def _parquet(self) -> Iterator[TraceBatch]:
        try:
            reader = pq.ParquetFile(self.path)
            self._parquet_rows = reader.metadata.num_rows
            schema = reader.schema_arrow
            nested = parquet_column_problems(schema.empty_table())  # the whole schema, before any row
            if nested:
                raise TraceError(nested, source=self.source)
            batches = reader.iter_batches(batch_size=self.batch_rows)
            first = True
            for batch in batches:
                table = pa.Table.from_batches([batch], schema=schema)
                first = False
                yield self._check(table, list(schema.names), from_text=False)
            if first:  # no rows: still check the header
                yield self._check(schema.empty_table(), list(schema.names), from_text=False)
        except TraceError:
            raise
        except (pa.ArrowException, OSError) as exc:
            self._fail("not_parquet", f"not a readable Parquet file ({shorten(str(exc), 120)})")

    def _csv(self) -> Iterator[TraceBatch]:
        bom = 3 if self._head.startswith(b"\xef\xbb\xbf") else 0
        head = self._head[bom:]
        sniff_csv(head, self.source)
        first_line = head.split(b"\n", 1)[0]
        # enough string-typed columns for the header; a quoted line break in it means look further
        width = (head if first_line.count(b'"') % 2 else first_line).count(b",") + 1
        convert = pv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(width)},
                                    strings_can_be_null=False)

        def remember(row: pv.InvalidRow) -> str:
            self._bad_rows.append(int(row.number) if row.number is not None else 0)
            if len(self._bad_examples) < MAX_EXAMPLES:
                self._bad_examples.append(shorten(row.text, 60))
            return "skip"

        handle = open(self.path, "rb")
        self._counter = _CountingFile(handle)
        if bom:
            handle.seek(bom)
        names: list[str] | None = None
        kept = 0  # records kept so far, the header included
        try:
            try:
                reader = pv.open_csv(
                    pa.PythonFile(self._counter, mode="r"),
                    read_options=pv.ReadOptions(autogenerate_column_names=True, use_threads=False,
                                                block_size=BLOCK_BYTES),
                    parse_options=pv.ParseOptions(newlines_in_values=True, invalid_row_handler=remember),
                    convert_options=convert,
                )
                pending: list[pa.RecordBatch] = []
                for batch in _then_none(reader):
                    if batch is not None:
                        pending.append(batch)
                        if sum(b.num_rows for b in pending) < self.batch_rows + (names is None):
                            continue
                    if not pending:
                        break
                    table = pa.Table.from_batches(pending)
                    pending = []
                    if names is None:
                        if table.num_rows == 0:
                            continue
                        names = [str(c[0].as_py()) if c[0].is_valid else "" for c in table.columns]
                        self._width = len(names)
                        self._header_checks(names)
                        table = table.slice(1)
                        kept = 1
                    if any(t != pa.string() for t in table.schema.types):
                        table = table.cast(pa.schema([(f, pa.string()) for f in table.column_names]))
                    rows = self._record_numbers(kept, table.num_rows)
                    kept += table.num_rows
                    yield self._check(table, names, from_text=True, rows=rows)
            except pa.ArrowInvalid as exc:
                if "UTF8" in str(exc) or "utf8" in str(exc).lower():
                    self._utf8_failure()
                self._fail("not_csv", f"not a readable CSV file ({shorten(str(exc), 120)})")
        finally:
            handle.close()
        if names is None:
            self._fail("empty_file", "the file has no header and no rows")

    def _header_checks(self, names: list[str]) -> None:
        if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
            sep = "semicolons" if ";" in names[0] else "tabs"
            self._header_problems.append(Problem(None, f"the file seems to be separated by {sep}, not commas",
                                                 "not_csv", hint="Save it as comma-separated CSV"))

    def _record_numbers(self, kept: int, n: int) -> np.ndarray:
        """Spreadsheet rows of the next `n` kept records, skipping the rows the reader rejected.

        The reader reports a rejected row while parsing its block, before that
        block's batch is handed out, so every rejection up to here is known.
        """
        j = np.arange(kept, kept + n, dtype=np.int64) + 1  # 1-based position among kept records
        if not len(self._bad_rows):
            return j
        skipped = np.sort(np.frombuffer(self._bad_rows, dtype=np.int64))
        kept_before = skipped - np.arange(len(skipped))  # records kept before each rejected one, plus one
        return j + np.searchsorted(kept_before, j, side="right")

    def _check(self, table: pa.Table, names: list[str], *, from_text: bool,
               rows: np.ndarray | None = None) -> TraceBatch:
        if rows is None:
            rows = np.arange(self.rows_read, self.rows_read + table.num_rows, dtype=np.int64) + 2
        frame = table.to_pandas()
        frame.columns = names
        checked = check_batch(frame, column_map=self.column_map, rows=rows, from_text=False, whole_file=False)
        self.rows_read += table.num_rows
        return TraceBatch(checked=checked, rows=rows, raw=_named(table, names, self.column_map, text=from_text))

    def _utf8_failure(self) -> None:
        """Say where the first undecodable byte is (a line, as quoted cells may span lines)."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        line, offset = 1, 0
        with open(self.path, "rb") as fh:
            while block := fh.read(1 << 24):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    line += block.count(b"\n", 0, exc.start)
                    self._fail("encoding", f"the file is not valid UTF-8 text (byte 0x{block[exc.start]:02x} "
                                           f"on line {line})",
                               hint="Save it as 'CSV UTF-8' (Excel) or re-encode it to UTF-8")
                line += block.count(b"\n")
                offset += len(block)
        self._fail("encoding", "the file is not valid UTF-8 text")


def _named(table: pa.Table, names: list[str], column_map: Mapping[str, str], *, text: bool) -> pa.Table:
    """The batch's columns under their names after the map, first occurrence of each name only.

    CSV cells are text with '' for an empty cell; the contract reads '' as missing.
    """
    seen: dict[str, pa.ChunkedArray] = {}
    for name, column in zip(names, table.columns):
        target = column_map.get(name, name)
        if target in seen:
            continue
        if text:
            column = pa.chunked_array([_empty_as_null(c) for c in column.chunks], type=pa.string())
        seen[target] = column
    return pa.table(seen) if seen else pa.table({})


def _empty_as_null(chunk: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(chunk, ""), pa.scalar(None, pa.string()), chunk)


def _then_none(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch | None]:
    """The batches, then None once, so a consumer gathering them knows to flush."""
    yield from batches
    yield None


def merge_problems(problems: list[Problem]) -> list[Problem]:
    """One problem per (column, reason): rows and examples of all batches, counts added up.

    Batches come in file order, so the rows stay in file order.
    """
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (p.column, p.code, p.reason, p.hint)
        if key not in merged:
            merged[key] = p
            continue
        old = merged[key]
        examples = tuple(dict.fromkeys((*old.examples, *p.examples)))[:MAX_EXAMPLES]
        merged[key] = Problem(old.column, old.reason, old.code, rows=(old.rows + p.rows)[:MAX_ROWS_KEPT],
                              count=old.count + p.count, examples=examples, hint=old.hint,
                              web_hint=old.web_hint)
    return list(merged.values())


class _CountingFile:
    """A read-only file that counts the bytes handed out, for progress."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.position = 0
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        data = self._handle.read(n)
        self.position += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def tell(self) -> int:
        return self._handle.tell()
