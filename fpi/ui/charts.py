"""Pure plotly figure builders: data in, Figure out; the app only shows them."""
from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fpi.display import PERCENT_D3, format_percent, label_name, label_names, stage_name
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


def layout(fig: go.Figure, title: str, *, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), template="plotly_white")
    # Room for long tick labels instead of letting them run into each other or the title.
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True, ticksuffix=" ")
    return fig


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
    return layout(fig, "Predicted failure points", height=360)


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
    return layout(fig, "Where turns fail in the pipeline", height=360)


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
    return layout(fig, "Defect rate over time", height=340)


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
    fig = layout(fig, f"Failure points by {dimension}", height=160 + 26 * max(3, len(matrix)))
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
    return layout(fig, "Model confidence per predicted failure point", height=120 + 40 * max(1, len(distribution)))


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
    return layout(fig, html.escape(cohort), height=380)


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
    return layout(fig, f"Model performance by {html.escape(dimension)}", height=140 + 36 * max(2, len(performance)))


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
    return layout(fig, html.escape(f"{failure_point} rate, {series}: control chart"), height=320)


# ---------------------------------------------------------------- what changed (data from fpi.analysis.compare, gaps)

DIAGONAL_COLOR = "#e8eaed"


def migration_figure(migration: pd.DataFrame, *, before: str, after: str) -> go.Figure:
    """Turns per (failure point before: row, after: column), `fpi.analysis.compare.Comparison.migration`.

    The diagonal (turns that kept their failure point) is grey, with its count: it dwarfs the moves, so the
    red scale is spread over the turns that moved only. `before` and `after` name the versions (escaped).
    """
    counts = migration.reindex(index=list(LABELS), columns=list(LABELS), fill_value=0).to_numpy(dtype=float)
    names = label_names(LABELS)
    same = np.eye(len(LABELS), dtype=bool)
    moved = np.where(same, np.nan, counts)
    kept = np.where(same, counts, np.nan)
    text = [[f"{int(v):,}" for v in row] for row in counts]
    b, a = html.escape(before), html.escape(after)
    hover = f"%{{text}} turns: %{{y}} by {b}, %{{x}} by {a}"
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=kept, x=names, y=names, text=text, texttemplate="%{text}", showscale=False,
                             colorscale=[[0, DIAGONAL_COLOR], [1, DIAGONAL_COLOR]], hovertemplate=hover + " (same)"
                             "<extra></extra>", xgap=2, ygap=2))
    fig.add_trace(go.Heatmap(z=moved, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Reds",
                             zmin=0, zmax=max(1.0, float(np.nanmax(moved, initial=0.0))), xgap=2, ygap=2,
                             hovertemplate=hover + "<extra>moved</extra>", colorbar=dict(title="turns moved")))
    fig.update_yaxes(autorange="reversed", title=f"failure point by {b}")
    fig.update_xaxes(side="top", title=f"failure point by {a}")
    fig = layout(fig, f"Rows: {b}; columns: {a}", height=430)
    fig.update_layout(margin=dict(t=110), title=dict(y=0.98, yanchor="top"))  # labels on top, clear of the title
    return fig


def rate_change_figure(rates: pd.DataFrame, *, before: str, after: str) -> go.Figure:
    """Each failure point's rate change (after minus before) with its 95% interval, in percentage points.

    `rates` is `Comparison.rates`; the `defect` row (all failure points together) comes first.
    """
    order = ["defect", *[label for label in LABELS if label != "correct"]]
    part = rates.set_index("failure_point").reindex([o for o in order if o in set(rates["failure_point"])])
    names = ["all defects" if fp == "defect" else label_name(fp) for fp in part.index]
    change, low, high = (100 * part[c].to_numpy(dtype=float) for c in ("change", "low", "high"))
    colors = [UP if lo > 0 else DOWN if hi < 0 else OVERALL_COLOR for lo, hi in zip(low, high)]
    fig = go.Figure(go.Scatter(
        x=change, y=names, mode="markers", marker=dict(color=colors, size=11),
        error_x=dict(type="data", symmetric=False, array=high - change, arrayminus=change - low, color="#555"),
        customdata=np.stack([100 * part["rate_before"].to_numpy(float), 100 * part["rate_after"].to_numpy(float),
                             low, high], axis=1),
        hovertemplate="%{y}: %{customdata[0]:.1f}% → %{customdata[1]:.1f}%, change %{x:+.2f} points "
                      "(95% interval %{customdata[2]:+.2f} to %{customdata[3]:+.2f})<extra></extra>",
    ))
    fig.add_vline(x=0, line=dict(color="#888", width=1))
    fig.update_xaxes(title="change in percentage points (after minus before)", ticksuffix=" pt", zeroline=False)
    fig.update_yaxes(autorange="reversed")
    return layout(fig, html.escape(f"{before} → {after}: change with its 95% interval"), height=330)


def stage_gap_figure(rows: pd.DataFrame, *, cohort: str, x_range: tuple[float, float] | None = None) -> go.Figure:
    """One flagged cohort's gap to the rest, split into the failure points: its rows of
    `fpi.analysis.gaps.stage_gaps`. Bars in percentage points with 95% intervals; the parts add up to the
    whole gap, named in the title with `cohort` (escaped: it is user data). `x_range` (points) gives several
    cohorts' charts one scale.
    """
    whole = rows[rows["failure_point"] == "defect"]
    parts = rows[rows["failure_point"] != "defect"]
    diff, low, high = (100 * parts[c].to_numpy(dtype=float) for c in ("difference", "low", "high"))
    fig = go.Figure(go.Bar(
        x=diff, y=label_names(parts["failure_point"]), orientation="h",
        marker_color=[LABEL_COLORS.get(str(fp), "#888") for fp in parts["failure_point"]],
        error_x=dict(type="data", symmetric=False, array=high - diff, arrayminus=diff - low, color="#333",
                     thickness=1.2),
        customdata=np.stack([100 * parts["rate"].to_numpy(float), 100 * parts["rest_rate"].to_numpy(float), low,
                             high], axis=1),
        hovertemplate="%{y}: %{x:+.1f} points (%{customdata[0]:.1f}% here vs %{customdata[1]:.1f}% elsewhere; "
                      "95% interval %{customdata[2]:+.1f} to %{customdata[3]:+.1f})<extra></extra>",
    ))
    fig.add_vline(x=0, line=dict(color="#888", width=1))
    fig.update_xaxes(title="percentage points above the rest", ticksuffix=" pt", zeroline=False,
                     range=list(x_range) if x_range is not None else None)
    fig.update_yaxes(autorange="reversed")
    gap = 100 * float(whole["difference"].iloc[0]) if len(whole) else float(np.nansum(diff))
    return layout(fig, html.escape(f"{cohort}: {gap:.1f} points worse than the rest"), height=260)
