"""The app's pages: their files (relative to app.py, as Streamlit resolves them) and titles."""
from __future__ import annotations

import streamlit as st

from fpi.ui import identity

DATA = "fpi/ui/pages/data.py"
OVERVIEW = "fpi/ui/pages/overview.py"
DIALOGUE = "fpi/ui/pages/dialogue.py"
MODEL = "fpi/ui/pages/model.py"
COHORTS = "fpi/ui/pages/cohorts.py"
TRIAGE = "fpi/ui/pages/triage.py"
COMPARE = "fpi/ui/pages/compare.py"
TEAM = "fpi/ui/pages/team.py"


def pages() -> list[st.Page]:
    """The navigation, in the order an analyst works: load, look, drill down, judge the model.

    With login configured (`[auth]` in secrets) and nobody logged in, only the login page.
    """
    if identity.login_required() and not identity.is_logged_in():
        return [st.Page(identity.login_page, title="Log in", icon=":material/login:", url_path="login",
                        default=True)]
    return [
        st.Page(DATA, title="Data", icon=":material/upload_file:", url_path="data"),
        # The first screen is the dashboard (on the bundled sample until the user loads their own traces).
        st.Page(OVERVIEW, title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
        st.Page(DIALOGUE, title="Dialogue drill-down", icon=":material/forum:", url_path="dialogue"),
        st.Page(COHORTS, title="Cohorts", icon=":material/groups:", url_path="cohorts"),
        st.Page(COMPARE, title="Compare", icon=":material/compare_arrows:", url_path="compare"),
        st.Page(TRIAGE, title="Triage", icon=":material/checklist:", url_path="triage"),
        st.Page(TEAM, title="Team", icon=":material/diversity_3:", url_path="team"),
        st.Page(MODEL, title="Model", icon=":material/model_training:", url_path="model"),
    ]
