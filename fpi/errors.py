"""One exception hierarchy for fpi; turned into words only at the edges (CLI, UI)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

MAX_ROWS_SHOWN = 5


class FpiError(Exception):
    """Base of every error fpi raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One broken rule of the trace contract.

    `rows` are 1-based as a spreadsheet shows the file: the header is row 1,
    the first turn row 2. Empty for file-level problems (missing column, not a CSV).
    """

    column: str | None
    reason: str
    code: str
    rows: tuple[int, ...] = ()
    count: int = 0
    examples: tuple[str, ...] = ()
    hint: str | None = None
    web_hint: str | None = None
    """The hint for someone using the app (no command-line flags); None when `hint` already suits."""

    def found_text(self) -> str:
        """The offending values as found in the file, quoted: "'1.7', 'abc'" (empty when none are kept)."""
        return ", ".join(repr(e) for e in self.examples)

    def for_web(self) -> dict[str, object]:
        """The problem as a web user reads it: the column, the rows, the value found and the reason in full,
        with the app's way of fixing it instead of the command line's."""
        reason = self.reason.replace("--map ", "the column mapping ")
        hint = self.web_hint or self.hint
        if hint and "--map" in hint:
            hint = "Choose the right column in the 'Map your columns' form"
        return {
            "column": self.column or "(the whole file)",
            "rows": self.rows_text(),
            "count": self.count,
            "found": self.found_text(),
            "reason": _sentence(reason) + (f" {_sentence(hint)}" if hint else ""),
            "code": self.code,
        }

    def rows_text(self) -> str:
        if not self.count:
            return ""
        shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
        more = self.count - min(self.count, MAX_ROWS_SHOWN)
        return f"{shown}" + (f" and {more} more" if more else "")

    def describe(self) -> str:
        where = f"column '{self.column}'" if self.column else "file"
        parts = [where]
        if self.count:
            plural = "row" if self.count == 1 else "rows"
            parts.append(f"{plural} {self.rows_text()} ({self.count} in all)")
        text = ", ".join(parts) + f": {self.reason}"
        if self.examples:
            text += " (found: " + ", ".join(repr(e) for e in self.examples) + ")"
        if self.hint:
            text += f". {self.hint}"
        return text


def _sentence(text: str) -> str:
    """`text` with a capital first letter and a final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class TraceError(FpiError):
    """A traces file broke the contract; carries every problem found."""

    def __init__(self, problems: Sequence[Problem], *, source: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        super().__init__(self.report())

    def report(self) -> str:
        name = f"'{self.source}'" if self.source else "the traces"
        n = len(self.problems)
        head = f"{name} was rejected: {n} problem{'s' if n != 1 else ''} (nothing was loaded)."
        lines = [head, *(f"  - {p.describe()}" for p in self.problems)]
        if any(p.count for p in self.problems):
            lines.append("Rows are numbered as a spreadsheet shows the file: the header is row 1, the first turn row 2.")
        return "\n".join(lines)

    def to_records(self) -> list[dict[str, object]]:
        """The report as rows (column, rows, count, reason) for a table in the UI or JSON."""
        return [
            {
                "column": p.column or "(file)",
                "rows": p.rows_text(),
                "count": p.count,
                "found": p.found_text(),
                "reason": p.reason + (f". {p.hint}" if p.hint else ""),
                "code": p.code,
            }
            for p in self.problems
        ]

    def web_records(self) -> list[dict[str, object]]:
        """The report for the app: column, rows, count, found, reason in words a web user can act on."""
        return [p.for_web() for p in self.problems]


class ModelError(FpiError):
    """A model could not be trained, loaded or used."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        self.message = message
        """The reason without the path, to wrap in another message."""
        super().__init__(message if path is None else f"{message} (model: {path})")


class NotLabelledError(FpiError):
    """An operation needs labelled turns and the traces have none (or too few)."""


class StoreError(FpiError):
    """The verdict store could not be opened, migrated, read or written, or refused a verdict."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message if url is None else f"{message} (verdict store: {url})")


class ScoredFileError(FpiError):
    """A file given as already scored is not a readable Parquet file with fpi's prediction columns."""

    def __init__(self, message: str, *, path: str, missing: Sequence[str] = ()) -> None:
        self.path = path
        self.missing: tuple[str, ...] = tuple(missing)
        super().__init__(f"{path}: {message}")


class PermissionDeniedError(FpiError):
    """A session tried something its role does not allow (e.g. an analyst activating a model)."""

    def __init__(self, message: str, *, action: str, actor: str, role: str) -> None:
        self.action = action
        self.actor = actor
        self.role = role
        super().__init__(message)
