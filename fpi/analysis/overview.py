"""The Overview's questions, asked of scored traces in memory or of a large scored file, one way.

`OverviewData` is the protocol; `FrameOverview` answers with pandas (`fpi.analysis.dashboard`),
`ParquetOverview` with DuckDB (`fpi.analysis.aggregates`), reading only what it shows. Both give
the same tables for the same turns (tests/analysis/test_overview.py runs every check on both), so a
page never asks which one it has.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from fpi.analysis import aggregates, dashboard
from fpi.analysis.filtering import FilterOptions, Filters, apply_filters, filter_options
from fpi.data.schema import PREDICTED_COLUMN

__all__ = ["FrameOverview", "OverviewData", "ParquetOverview"]


class OverviewData(Protocol):
    """What the Overview page asks of the scored traces it shows."""

    def filter_options(self) -> FilterOptions:
        """The values the sidebar filters offer."""

    def overview(self, filters: Filters) -> dashboard.Overview:
        """Everything on the page but the cohort breakdown, for the turns that pass `filters`."""

    def breakdown(self, filters: Filters, column: str) -> pd.DataFrame:
        """One row per value of `column`: turns, defect rate and the most common failure point."""

    def matching_turns(self, filters: Filters, *, limit: int, predicted: str | None = None,
                       cohort: tuple[str, str] | None = None, defects_only: bool = False) -> tuple[pd.DataFrame, int]:
        """The `limit` most confident matching turns, and how many match in all."""


@dataclass(frozen=True)
class FrameOverview:
    """The Overview of a scored frame in memory."""

    frame: pd.DataFrame

    def filter_options(self) -> FilterOptions:
        return filter_options(self.frame)

    def overview(self, filters: Filters) -> dashboard.Overview:
        return dashboard.overview(apply_filters(self.frame, filters))

    def breakdown(self, filters: Filters, column: str) -> pd.DataFrame:
        return dashboard.breakdown(apply_filters(self.frame, filters), column)

    def matching_turns(self, filters: Filters, *, limit: int, predicted: str | None = None,
                       cohort: tuple[str, str] | None = None, defects_only: bool = False) -> tuple[pd.DataFrame, int]:
        frame = apply_filters(self.frame, filters)
        if defects_only:
            frame = frame[frame[PREDICTED_COLUMN] != "correct"]
        turns = dashboard.matching_turns(frame, predicted=predicted, cohort=cohort)
        return turns.head(limit), len(turns)


@dataclass(frozen=True)
class ParquetOverview:
    """The Overview of a large scored Parquet file, computed by DuckDB without loading its turns."""

    path: str

    def filter_options(self) -> FilterOptions:
        return aggregates.filter_options(self.path)

    def overview(self, filters: Filters) -> dashboard.Overview:
        return aggregates.overview(self.path, filters)

    def breakdown(self, filters: Filters, column: str) -> pd.DataFrame:
        return aggregates.breakdown(self.path, column, filters)

    def matching_turns(self, filters: Filters, *, limit: int, predicted: str | None = None,
                       cohort: tuple[str, str] | None = None, defects_only: bool = False) -> tuple[pd.DataFrame, int]:
        options = dict(predicted=predicted, cohort=cohort, defects_only=defects_only)
        return (aggregates.matching_turns(self.path, filters, limit=limit, **options),
                aggregates.matching_count(self.path, filters, **options))
