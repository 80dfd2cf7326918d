"""fpi's Streamlit app: `streamlit run app.py`. Only the navigation lives here; pages are in fpi/ui/."""
import streamlit as st

from fpi.ui import nav

st.set_page_config(page_title="fpi · failure points", page_icon=":material/hearing:", layout="wide")
st.navigation(nav.pages()).run()
