"""What an upload holds, in a few numbers, and a fingerprint that names its content."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fpi.data.columns import stage_signal_columns
from fpi.data.schema import (
    COLUMNS_BY_NAME, LABEL_COLUMN,
    LABELS, feature_name_problem, is_unusable_stage_signal,
    safe_feature_name,
)


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
