"""Pure plotly figure builders for the Team page: data from `fpi.review.agreement` in, Figure out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fpi.display import label_names
from fpi.ui.charts import LABEL_COLORS


def kappa_figure(per_label: pd.DataFrame, *, overall: float, method: str) -> go.Figure:
    """Kappa per failure point with its bootstrap interval, and the overall kappa as a dotted line.

    `per_label` is `Agreement.per_label`; labels nobody chose (NaN kappa) are left out.
    """
    part = per_label[per_label["kappa"].notna()]
    fig = go.Figure(go.Bar(
        y=label_names(part["label"]), x=part["kappa"], orientation="h",
        marker_color=[LABEL_COLORS.get(str(label), "#9aa5b1") for label in part["label"]],
        error_x=dict(type="data", symmetric=False, array=(part["high"] - part["kappa"]).fillna(0).to_numpy(),
                     arrayminus=(part["kappa"] - part["low"]).fillna(0).to_numpy(), color="#333", thickness=1.2),
        customdata=part[["low", "high", "turns"]].to_numpy(),
        hovertemplate="%{y}: kappa %{x:.2f} (interval %{customdata[0]:.2f} to %{customdata[1]:.2f}; "
                      "%{customdata[2]:,} turns with this label)<extra></extra>",
    ))
    if not np.isnan(overall):
        fig.add_vline(x=overall, line_dash="dot", line_color="#333",
                      annotation_text=f"overall {overall:.2f}", annotation_position="top")
    fig.update_xaxes(title=f"{'Cohen' if method == 'cohen' else 'Fleiss'}'s kappa (1 = always agree, 0 = chance)"
                     .replace("Fleiss's", "Fleiss'"),
                     range=[min(-0.1, float(part["low"].min()) if len(part) else 0.0), 1.05])
    fig.update_yaxes(autorange="reversed")  # pipeline order, top down
    fig.update_layout(title="Agreement per failure point", height=320, margin=dict(l=10, r=10, t=50, b=10),
                      template="plotly_white")
    fig.update_xaxes(automargin=True)
    return fig
