"""The contract in docs/trace-schema.md and the one the code checks (fpi.data.schema) say the same."""
from __future__ import annotations

import re
from pathlib import Path

from fpi.data.schema import COLUMNS, LABELS, STAGE_LABEL, STAGES, Kind

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-schema.md"

DOC_TYPES = {
    "string": Kind.STRING,
    "integer >= 0": Kind.TURN_INDEX,
    "ISO-8601 date-time": Kind.TIMESTAMP,
    "float in [0, 1]": Kind.PROBABILITY,
    "boolean": Kind.BOOLEAN,
    "label": Kind.LABEL,
}
"""How the document writes each kind of column the code checks."""


def _table(first_header: str) -> list[list[str]]:
    """The rows of the Markdown table whose first header cell is `first_header`, cells stripped of backticks."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\|\s*{first_header}\s*\|", line))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_the_documented_columns_are_the_checked_ones() -> None:
    documented = [(name, DOC_TYPES.get(kind), required == "yes") for name, kind, required, _ in _table("column")]
    checked = [(c.name, c.kind, c.required) for c in COLUMNS]
    assert documented == checked


def test_the_documented_stages_and_labels_are_the_code_ones() -> None:
    rows = _table("stage")
    assert [stage for stage, _, _ in rows] == list(STAGES)
    assert [label for _, label, _ in rows] == [STAGE_LABEL[s] for s in STAGES]
    assert set(LABELS) == {"correct", *STAGE_LABEL.values()}
