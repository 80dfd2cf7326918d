"""Figures of the model: why it labelled a turn (SHAP), what it leans on overall, how good it is.

Pure functions, data in and a plotly figure out, as `fpi.ui.charts`, whose layout and colours they share.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fpi.display import label_name, label_names, stage_name
from fpi.model import glossary
from fpi.model.explain import TurnExplanation
from fpi.data.schema import LABELS
from fpi.ui.charts import DOWN, LABEL_COLORS, UP, layout


def waterfall_figure(explanation: TurnExplanation, *, top: int = 10) -> go.Figure:
    """From the base value to the turn's raw score for one class, biggest contributions first.

    Each bar is labelled in the same words as the reasons ("NLU intent = PlayAudiobook", "ER confidence:
    not logged"); hovering a bar gives the feature's meaning from `fpi.model.glossary`.
    """
    evidence = list(explanation.evidence)
    shown = evidence[:top]
    rest = float(sum(r.contribution for r in evidence[top:]))
    labels = [r.phrase or glossary.labelled_value(r.feature, r.value) for r in shown]
    labels = [_unique(label, labels[:i]) for i, label in enumerate(labels)]
    values = [r.contribution for r in shown]
    hover = [f"{glossary.display_name(r.feature)}: {glossary.meaning(r.feature)}" for r in shown]
    if len(evidence) > top:
        labels.append(f"{len(evidence) - top} other features")
        values.append(rest)
        hover.append("The remaining features together.")
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            y=["base value", *labels, "score"],
            x=[explanation.base_value, *values, 0.0],
            measure=["absolute", *(["relative"] * len(values)), "total"],
            increasing=dict(marker=dict(color=UP)),
            decreasing=dict(marker=dict(color=DOWN)),
            totals=dict(marker=dict(color="#999999")),
            customdata=["The model's score before it looks at this turn (the average turn).", *hover,
                        f"The turn's score for {label_name(explanation.label)} (log-odds)."],
            text=[f"{v:+.2f}".replace("-", "\u2212") for v in (explanation.base_value, *values, explanation.raw_score)],
            # Outside the bars, never clipped; the base value's inside its bar, clear of the row labels.
            textposition=["inside", *(["outside"] * len(values)), "outside"], cliponaxis=False,
            hovertemplate="%{y}<br>%{customdata}<br>%{x:+.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")  # read top-down: base value first, score last
    return layout(
        fig,
        f"Why {label_name(explanation.label)} (p = {explanation.probability:.2f}): contributions to its score",
        height=120 + 28 * (len(labels) + 2),
    )


def _unique(label: str, before: list[str]) -> str:
    """Plotly merges equal category names into one row; a trailing space per repeat keeps them apart."""
    while label in before:
        label += " "
    return label


def stage_group_figure(explanation: TurnExplanation) -> go.Figure:
    """Evidence summed per stage/context group: which part of the pipeline pushed the label."""
    groups = explanation.groups[explanation.groups.abs() > 1e-9].sort_values()
    values = groups.to_numpy(dtype=float)
    fig = go.Figure(
        go.Bar(
            x=values, y=[stage_name(g) for g in groups.index], orientation="h",
            marker_color=[UP if v > 0 else DOWN for v in values],
            # Signed, outside the bar and never clipped: "-0.24" must not read as "24".
            text=[f"{v:+.2f}".replace("-", "\u2212") for v in values], textposition="outside", cliponaxis=False,
            hovertemplate="%{y}: %{x:+.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(title=f"contribution toward {label_name(explanation.label)}", range=_padded_range(values),
                     zeroline=True, zerolinecolor="#888")
    return layout(fig, "Evidence per stage", height=120 + 30 * max(1, len(groups)))


def _padded_range(values: np.ndarray, *, pad: float = 0.3) -> list[float]:
    """An axis range around `values` and 0 with room on both sides for the labels outside the bars."""
    low, high = min(0.0, float(np.min(values, initial=0.0))), max(0.0, float(np.max(values, initial=0.0)))
    span = max(high - low, 1e-6)
    return [low - pad * span if low < 0 else low - 0.05 * span, high + pad * span if high > 0 else high + 0.05 * span]


def importance_figure(importance: pd.DataFrame, *, label: str, top: int = 15) -> go.Figure:
    """Mean |SHAP| of the most important features for one class."""
    part = importance[importance["class"] == label].nlargest(top, "mean_abs_shap").iloc[::-1]
    fig = go.Figure(go.Bar(x=part["mean_abs_shap"], y=[glossary.display_name(f) for f in part["feature"]],
                           orientation="h", marker_color=LABEL_COLORS.get(label, "#888"),
                           customdata=[glossary.meaning(f) for f in part["feature"]],
                           hovertemplate="%{y}<br>%{customdata}<br>mean |SHAP| %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title="mean |SHAP| (log-odds)")
    return layout(fig, f"What drives '{label_name(label)}'", height=120 + 24 * len(part))


def beeswarm_figure(points: pd.DataFrame, *, label: str) -> go.Figure:
    """One row per feature, one dot per turn: SHAP value on x, feature value as colour."""
    features = list(dict.fromkeys(points["feature"]))[::-1]
    position = {name: i for i, name in enumerate(features)}
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.3, 0.3, len(points))
    fig = go.Figure(
        go.Scattergl(
            x=points["shap"], y=points["feature"].map(position) + jitter, mode="markers",
            marker=dict(size=5, color=points["value_pct"], colorscale="RdBu_r", cmin=0, cmax=1,
                        colorbar=dict(title="value<br>percentile")),
            hovertext=[glossary.labelled_value(f, v) for f, v in zip(points["feature"], points["value"])],
        )
    )
    fig.update_yaxes(tickvals=list(position.values()), ticktext=[glossary.display_name(f) for f in position])
    fig.update_xaxes(title=f"SHAP value toward '{label_name(label)}'")
    return layout(fig, f"Feature effects on '{label_name(label)}'", height=140 + 32 * len(features))


def confusion_figure(confusion: list[list[int]], *, title: str = "Confusion matrix") -> go.Figure:
    matrix = np.asarray(confusion, dtype=float)
    share = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    fig = go.Figure(
        go.Heatmap(
            z=share, x=label_names(LABELS), y=label_names(LABELS), colorscale="Blues", zmin=0, zmax=1,
            text=matrix.astype(int), texttemplate="%{text}", hovertemplate="label %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="label", autorange="reversed")
    return layout(fig, title, height=420)


def calibration_figure(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Reliability diagram: accuracy against confidence per bin, one line per system."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"),
                               name="perfect calibration"))
    for name, table in tables.items():
        fig.add_trace(go.Scatter(x=table["confidence"], y=table["accuracy"], mode="lines+markers", name=name,
                                 hovertext=[f"{n:,} turns" for n in table["turns"]]))
    fig.update_xaxes(title="confidence of the predicted label", range=[0, 1])
    fig.update_yaxes(title="share correct", range=[0, 1])
    return layout(fig, "Calibration", height=380)


def metric_comparison_figure(report: Mapping[str, Any]) -> go.Figure:
    """F1 per class for each system, side by side."""
    fig = go.Figure()
    for name, metrics in report["systems"].items():
        fig.add_trace(go.Bar(name=name, x=label_names(LABELS), y=[metrics["per_class"][c]["f1"] for c in LABELS]))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="F1", range=[0, 1])
    return layout(fig, "F1 per class: model vs baselines")


def candidate_comparison_figure(report: Mapping[str, Any]) -> go.Figure:
    """F1 per class of the active model and a newly trained candidate, on the same held-out turns."""
    fig = metric_comparison_figure(report)
    fig.update_layout(title="F1 per class: candidate vs active model")
    return fig
