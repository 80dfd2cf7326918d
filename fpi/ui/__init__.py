"""The Streamlit app's pages and their helpers: the only part of fpi that imports streamlit.

Pages lay out widgets and call the package (`fpi.scoring.frame`, `fpi.analysis.dashboard`,
`fpi.ui.charts`, `fpi.model.explain`, `fpi.model.evaluate`, `fpi.model.registry`); session state
lives behind `fpi.ui.state`, caches behind `fpi.ui.services`.
"""
