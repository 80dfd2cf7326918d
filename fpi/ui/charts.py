"""Pure plotly figure builders: data in, Figure out; the app only shows them."""
from __future__ import annotations

import html
from typing import Any, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fpi.display import PERCENT_D3, format_percent, label_name, label_names, stage_name
from fpi.model import glossary
from fpi.model.explain import TurnExplanation
from fpi.data.schema import LABELS

LABEL_COLORS: dict[str, str] = {
    "correct": "#4c9f70",
    "false_wake": "#8e7cc3",
    "asr": "#e06666",
    "nlu": "#f6b26b",
    "er": "#ffd966",
    "result": "#6fa8dc",
}
UP, DOWN = "#d62728", "#1f77b4"


def _layout(fig: go.Figure, title: str, *, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), template="plotly_white")
    # Room for long tick labels instead of letting them run into each other or the title.
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True, ticksuffix=" ")
    return fig


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
    return _layout(
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
    return _layout(fig, "Evidence per stage", height=120 + 30 * max(1, len(groups)))


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
    return _layout(fig, f"What drives '{label_name(label)}'", height=120 + 24 * len(part))


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
    return _layout(fig, f"Feature effects on '{label_name(label)}'", height=140 + 32 * len(features))


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
    return _layout(fig, title, height=420)


def calibration_figure(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Reliability diagram: accuracy against confidence per bin, one line per system."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"),
                               name="perfect calibration"))
    for name, table in tables.items():
        fig.add_trace(go.Scatter(x=table["confidence"], y=table["accuracy"], mode="lines+markers", name=name,
                                 hovertext=[f"{n:,} turns" for n in table["turns"]]))
    fig.update_xaxes(title="confidence of the predicted label", range=[0, 1])
    fig.update_yaxes(title="share correct", range=[0, 1])
    return _layout(fig, "Calibration", height=380)


def metric_comparison_figure(report: Mapping[str, Any]) -> go.Figure:
    """F1 per class for each system, side by side."""
    fig = go.Figure()
    for name, metrics in report["systems"].items():
        fig.add_trace(go.Bar(name=name, x=label_names(LABELS), y=[metrics["per_class"][c]["f1"] for c in LABELS]))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="F1", range=[0, 1])
    return _layout(fig, "F1 per class: model vs baselines")


# ---------------------------------------------------------------- dashboards (data from fpi.analysis.dashboard)

STAGE_NODE_COLOR = "#9aa5b1"
ALL_DEFECTS_COLOR = "#333333"


def _rgba(hex_color: str, alpha: float) -> str:
    value = hex_color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def label_distribution_figure(distribution: pd.DataFrame) -> go.Figure:
    """Turns per predicted failure point (bars, clickable), human labels as grey bars beside when present.

    The human labels are bars of their own rather than markers on the predicted bars, so they never
    cover the percentages written above the bars.
    """
    names = label_names(distribution["label"])
    has_labels = distribution["labelled"].sum() > 0
    fig = go.Figure(
        go.Bar(
            x=names, y=distribution["predicted"], name="predicted",
            marker_color=[LABEL_COLORS.get(label, "#888") for label in distribution["label"]],
            customdata=distribution["share"],
            text=[format_percent(share) for share in distribution["share"]], textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:,} turns (%{customdata:" + PERCENT_D3 + "})<extra>predicted</extra>",
        )
    )
    if has_labels:
        fig.add_trace(go.Bar(
            x=names, y=distribution["labelled"], name="human label", marker_color="rgba(60,60,60,0.35)",
            marker_line=dict(color="#333", width=1),
            hovertemplate="%{x}: %{y:,} turns<extra>human label</extra>",
        ))
        fig.update_layout(barmode="group", bargap=0.25, bargroupgap=0.05)
    top = float(max(distribution["predicted"].max(), distribution["labelled"].max(), 1))
    fig.update_yaxes(title="turns", range=[0, top * 1.15])
    fig.update_layout(legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return _layout(fig, "Predicted failure points", height=360)


def sankey_figure(flows: Any) -> go.Figure:
    """Turns passing stage after stage, leaving at the stage that failed them, or ending correct.

    The data's "all turns" source node is left out: the first stage's size already is every turn.
    """
    nodes = flows.nodes[flows.nodes["kind"] != "source"].reset_index(drop=True)
    position = {int(old): new for new, old in enumerate(nodes["id"])}
    links = flows.links[flows.links["source"].isin(position) & flows.links["target"].isin(position)]
    outflow = links.groupby("source")["turns"].sum()
    inflow = links.groupby("target")["turns"].sum()
    stages = [i for i, kind in enumerate(nodes["kind"]) if kind == "stage"]
    step = 0.9 / max(1, len(stages))
    xs, ys, names, colors = [], [], [], []
    for i, (old, name, kind, label) in enumerate(zip(flows.nodes.loc[flows.nodes["kind"] != "source", "id"],
                                                      nodes["name"], nodes["kind"], nodes["label"])):
        size = int(outflow.get(old, 0)) if kind == "stage" else int(inflow.get(old, 0))
        shown = (f"fails at {stage_name(name[len('fails at '):])}" if str(name).startswith("fails at ")
                 else stage_name(name) if kind == "stage" else str(name))
        names.append(f"{shown}: {size:,}")
        if kind == "stage":
            column = stages.index(i)
            xs.append(0.01 + column * step)
            ys.append(0.55)
            colors.append(STAGE_NODE_COLOR)
        elif kind == "failure":
            column = sum(1 for k in nodes["kind"][:i] if k == "failure")
            xs.append(0.99 if column + 1 >= len(stages) else 0.01 + (column + 1) * step)
            ys.append(0.04)
            colors.append(LABEL_COLORS.get(str(label), "#888"))
        else:
            xs.append(0.99)
            ys.append(0.6)
            colors.append(LABEL_COLORS.get("correct", "#888"))
    link_colors = [_rgba(LABEL_COLORS.get(str(label), STAGE_NODE_COLOR), 0.5) if isinstance(label, str)
                   else _rgba(STAGE_NODE_COLOR, 0.25) for label in links["label"]]
    fig = go.Figure(go.Sankey(
        arrangement="fixed",
        node=dict(label=names, color=colors, pad=10, thickness=12, x=xs, y=ys,
                  hovertemplate="%{label}<extra></extra>"),
        textfont=dict(color="#1f2933", size=12),
        link=dict(source=[position[int(v)] for v in links["source"]],
                  target=[position[int(v)] for v in links["target"]],
                  value=links["turns"], color=link_colors,
                  hovertemplate="%{source.label} → %{target.label}: %{value:,} turns<extra></extra>"),
    ))
    return _layout(fig, "Where turns fail in the pipeline", height=360)


def defect_rate_time_figure(over_time: pd.DataFrame, *, limits: pd.DataFrame | None = None) -> go.Figure:
    """Share of turns failing, in all and per stage, per period.

    `limits` (`fpi.analysis.monitor.overall_limits`): the all-defects upper control limit as a dotted line,
    and each period in which any series breached its limit marked on the all-defects line.
    """
    fig = go.Figure()
    for label, part in over_time.groupby("label", sort=False):
        is_all = label == "all defects"
        fig.add_trace(go.Scatter(
            x=part["period"], y=part["rate"], mode="lines+markers" if len(part) < 60 else "lines",
            name=label_name(label),
            line=dict(color=ALL_DEFECTS_COLOR if is_all else LABEL_COLORS.get(str(label), "#888"),
                      width=3 if is_all else 1.5),
            customdata=part[["count", "turns"]].to_numpy(),
            hovertemplate="%{x}: %{y:" + PERCENT_D3 + "} (%{customdata[0]:,} of %{customdata[1]:,} turns)<extra>"
                          + label_name(label) + "</extra>",
        ))
    if limits is not None and len(limits):
        def naive(values: pd.Series) -> pd.Series:
            stamps = pd.to_datetime(values)
            return stamps.dt.tz_localize(None) if getattr(stamps.dt, "tz", None) is not None else stamps

        fig.add_trace(go.Scatter(
            x=naive(limits["period"]), y=limits["limit"], mode="lines", name="control limit (all defects)",
            line=dict(color=ALL_DEFECTS_COLOR, width=1.5, dash="dot"),
            hovertemplate="%{x}: limit %{y:" + PERCENT_D3 + "}<extra>all defects</extra>",
        ))
        overall = over_time[over_time["label"] == "all defects"].assign(period=lambda f: naive(f["period"]))
        flagged = limits[limits["breaches"] > 0].assign(period=lambda f: naive(f["period"])).merge(overall, on="period")
        if len(flagged):
            fig.add_trace(go.Scatter(
                x=flagged["period"], y=flagged["rate"], mode="markers", name="breach (see Control limits)",
                marker=dict(symbol="x", size=12, color="#d62728", line=dict(width=2)),
                customdata=flagged[["breaches"]].to_numpy(),
                hovertemplate="%{x}: %{customdata[0]} series above their limit<extra>breach</extra>",
            ))
    fig.update_yaxes(title="share of turns", tickformat=PERCENT_D3, rangemode="tozero")
    return _layout(fig, "Defect rate over time", height=340)


def breakdown_heatmap_figure(matrix: pd.DataFrame, *, dimension: str) -> go.Figure:
    """Cohorts (rows) x failure points (columns): share of the cohort's turns failing there."""
    z = matrix.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(
        z=z, x=label_names(matrix.columns), y=[html.escape(str(i)) for i in matrix.index], colorscale="Reds", zmin=0,
        text=[[format_percent(v) for v in row] for row in z], texttemplate="%{text}",
        hovertemplate=f"{dimension} %{{y}}, fails at %{{x}}: %{{text}} of its turns<extra></extra>",
        colorbar=dict(title="share", tickformat=PERCENT_D3),
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top")
    fig = _layout(fig, f"Failure points by {dimension}", height=160 + 26 * max(3, len(matrix)))
    fig.update_layout(margin=dict(t=90), title=dict(y=0.98, yanchor="top"))  # labels on top, clear of the title
    return fig


def confidence_distribution_figure(distribution: pd.DataFrame) -> go.Figure:
    """How sure the model is, per predicted label: box from the 25th to 75th percentile, whiskers 5th-95th."""
    fig = go.Figure()
    for row in distribution.itertuples(index=False):
        color = LABEL_COLORS.get(str(row.label), "#888")
        fig.add_trace(go.Box(
            y=[label_name(row.label)], q1=[row.q25], median=[row.median], q3=[row.q75], lowerfence=[row.q05],
            upperfence=[row.q95], mean=[row.mean], orientation="h", name=label_name(row.label), marker_color=color,
            fillcolor=_rgba(color, 0.45), line=dict(color=color), showlegend=False,
            hovertemplate=(f"{label_name(row.label)}: {row.turns:,} turns<br>median {row.median:.2f}, "
                           f"middle half {row.q25:.2f}–{row.q75:.2f}, 90% within {row.q05:.2f}–{row.q95:.2f}"
                           "<extra></extra>"),
        ))
    fig.update_xaxes(title="probability of the predicted label", range=[0, 1.01])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Model confidence per predicted failure point", height=120 + 40 * max(1, len(distribution)))


def _episodes_on_strip(episodes: pd.DataFrame | None, turns: list) -> pd.DataFrame:
    """Each episode's frame on the strip's rows (clipped to the turns shown) and its label."""
    if episodes is None or not len(episodes):
        return pd.DataFrame(columns=["y0", "y1", "text"])
    position = {t: i for i, t in enumerate(turns)}
    rows = []
    for episode in episodes.itertuples(index=False):
        inside = [position[t] for t in turns if episode.first_turn <= t <= episode.last_turn]
        if inside:
            outcome = str(episode.outcome).replace("_", " ")
            rows.append((min(inside) - 0.5, max(inside) + 0.5, f"episode: {episode.failure_point}, {outcome}"))
    return pd.DataFrame(rows, columns=["y0", "y1", "text"])


def confidence_strip_figure(strip: pd.DataFrame, *, episodes: pd.DataFrame | None = None) -> go.Figure:
    """One row per turn, one cell per stage coloured by its confidence; the predicted failing stage boxed.

    The boxes are one line trace (outlines joined by gaps), not a shape per turn: plotly
    redraws every shape on each update, which took 86 s for 1,000 boxes; a trace costs the
    same for any number of turns. Axes are numeric (stage and turn positions, labelled).
    `episodes` (as `fpi.analysis.episodes.episodes` returns them for this dialogue): each drawn as a dashed
    frame around its turns on this strip (clipped to them), with its failure point and outcome beside it.
    """
    stages = list(dict.fromkeys(strip["stage"]))
    turns = list(dict.fromkeys(strip["turn_index"]))
    table = strip.pivot(index="turn_index", columns="stage", values="confidence").reindex(index=turns, columns=stages)
    z = table.to_numpy(dtype=float)
    text = np.where(np.isnan(z), "—", np.char.mod("%.2f", np.nan_to_num(z)))
    rows = [f"turn {t}" for t in turns]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(len(stages))), y=list(range(len(turns))), colorscale="RdYlGn", zmin=0, zmax=1,
        text=text, texttemplate="%{text}", customdata=np.broadcast_to(np.array(rows, dtype=object)[:, None], z.shape),
        hovertemplate="%{customdata}: %{text}<extra></extra>", showscale=False, xgap=2, ygap=2,
    ))
    failing = strip[strip["failing"].to_numpy(dtype=bool)]
    if len(failing):
        stage_pos = {s: i for i, s in enumerate(stages)}
        turn_pos = {t: i for i, t in enumerate(turns)}
        x = failing["stage"].map(stage_pos).to_numpy(dtype=float)
        y = failing["turn_index"].map(turn_pos).to_numpy(dtype=float)
        # each box: 5 corners then a gap (None) so the line does not join the next box
        xs = np.column_stack([x - 0.5, x + 0.5, x + 0.5, x - 0.5, x - 0.5, np.full_like(x, np.nan)]).ravel()
        ys = np.column_stack([y - 0.5, y - 0.5, y + 0.5, y + 0.5, y - 0.5, np.full_like(y, np.nan)]).ravel()
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#111", width=3), hoverinfo="skip",
                                 showlegend=False, connectgaps=False))
    fig.update_xaxes(side="top", tickvals=list(range(len(stages))), ticktext=[stage_name(s) for s in stages], range=[-0.5, len(stages) - 0.5],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(autorange="reversed", tickvals=list(range(len(turns))), ticktext=rows, showgrid=False,
                     zeroline=False)
    shown = _episodes_on_strip(episodes, turns)
    if len(shown):
        xs = np.column_stack([np.full(len(shown), -0.55), np.full(len(shown), len(stages) - 0.45),
                              np.full(len(shown), len(stages) - 0.45), np.full(len(shown), -0.55),
                              np.full(len(shown), -0.55), np.full(len(shown), np.nan)]).ravel()
        y0, y1 = shown["y0"].to_numpy(), shown["y1"].to_numpy()
        ys = np.column_stack([y0, y0, y1, y1, y0, np.full_like(y0, np.nan)]).ravel()
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#d62728", width=2, dash="dash"),
                                 hoverinfo="skip", showlegend=False, connectgaps=False))
        for episode in shown.itertuples(index=False):
            fig.add_annotation(xref="paper", x=1.0, y=(episode.y0 + episode.y1) / 2, xanchor="left", showarrow=False,
                               text=html.escape(episode.text), font=dict(color="#d62728", size=12))
    fig.update_layout(height=70 + 34 * len(turns), template="plotly_white",
                      margin=dict(l=10, r=190 if len(shown) else 10, t=30, b=10))
    return fig


def candidate_comparison_figure(report: Mapping[str, Any]) -> go.Figure:
    """F1 per class of the active model and a newly trained candidate, on the same held-out turns."""
    fig = metric_comparison_figure(report)
    fig.update_layout(title="F1 per class: candidate vs active model")
    return fig


# ---------------------------------------------------------------- cohorts (data from fpi.analysis.cohorts)

COHORT_COLOR, OVERALL_COLOR = "#c0392b", "#9aa5b1"


def cohort_profile_figure(profile: pd.DataFrame, *, cohort: str) -> go.Figure:
    """A cohort's rate of each failure point beside all turns', with interval error bars.

    `profile` is `fpi.analysis.cohorts.cohort_profile`; `cohort` names it in the title (escaped: it is user data).
    """
    fig = go.Figure()
    for group, color in (("cohort", COHORT_COLOR), ("all turns", OVERALL_COLOR)):
        part = profile[profile["group"] == group]
        fig.add_trace(go.Bar(
            x=label_names(part["failure_point"]), y=part["rate"], name=group, marker_color=color,
            error_y=dict(type="data", symmetric=False, array=(part["high"] - part["rate"]).to_numpy(),
                         arrayminus=(part["rate"] - part["low"]).to_numpy(), color="#333", thickness=1.2),
            customdata=part[["count", "turns", "low", "high"]].to_numpy(),
            hovertemplate="%{x}: %{y:" + PERCENT_D3 + "} (%{customdata[0]:,} of %{customdata[1]:,} turns; "
                          "interval %{customdata[2]:" + PERCENT_D3 + "}–%{customdata[3]:" + PERCENT_D3 + "})<extra>"
                          + group + "</extra>",
        ))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    fig.update_yaxes(title="share of turns", tickformat=PERCENT_D3, rangemode="tozero")
    return _layout(fig, html.escape(cohort), height=380)


def cohort_performance_figure(performance: pd.DataFrame, *, dimension: str) -> go.Figure:
    """Accuracy and macro-F1 per cohort with their intervals (`fpi.analysis.cohorts.cohort_performance`)."""
    names = [html.escape(str(c)) for c in performance["cohort"]]
    fig = go.Figure()
    for metric, color, symbol in (("accuracy", "#1f77b4", "circle"), ("macro_f1", "#ff7f0e", "diamond")):
        value = performance[metric]
        fig.add_trace(go.Scatter(
            x=value, y=names, mode="markers", name=metric.replace("_", "-"),
            marker=dict(color=color, size=10, symbol=symbol),
            error_x=dict(type="data", symmetric=False, array=(performance[f"{metric}_high"] - value).to_numpy(),
                         arrayminus=(value - performance[f"{metric}_low"]).to_numpy(), color=color),
            customdata=performance["turns"], hovertemplate="%{y}: %{x:.3f} on %{customdata:,} labelled turns"
                                                          "<extra>" + metric + "</extra>",
        ))
    fig.update_xaxes(title="on the labelled turns", range=[0, 1.02])
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return _layout(fig, f"Model performance by {html.escape(dimension)}", height=140 + 36 * max(2, len(performance)))


def control_chart_figure(points: pd.DataFrame, *, series: str, failure_point: str) -> go.Figure:
    """One series' rate per period against the rate expected from its window and its upper control limit;
    breaches marked. `points` as `fpi.analysis.monitor.Monitoring.points`."""
    part = points[(points["series"] == series) & (points["failure_point"] == failure_point)].sort_values("period")
    color = ALL_DEFECTS_COLOR if failure_point == "defect" else LABEL_COLORS.get(failure_point, "#888")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=part["period"], y=part["limit"], mode="lines", name="upper control limit",
                             line=dict(color="#d62728", dash="dot", width=1.5)))
    fig.add_trace(go.Scatter(x=part["period"], y=part["expected"], mode="lines", name="expected (preceding window)",
                             line=dict(color="#888", dash="dash", width=1.5)))
    fig.add_trace(go.Scatter(
        x=part["period"], y=part["rate"], mode="lines+markers", name=html.escape(f"{failure_point} rate"),
        line=dict(color=color, width=2.5), customdata=part[["count", "turns"]].to_numpy(),
        hovertemplate="%{x}: %{y:.1%} (%{customdata[0]:,} of %{customdata[1]:,} turns)<extra></extra>",
    ))
    breaches = part[part["breach"]]
    fig.add_trace(go.Scatter(x=breaches["period"], y=breaches["rate"], mode="markers", name="breach",
                             marker=dict(color="#d62728", size=13, symbol="x")))
    fig.update_yaxes(title="share of turns", tickformat=".0%", rangemode="tozero")
    return _layout(fig, html.escape(f"{failure_point} rate, {series}: control chart"), height=320)
