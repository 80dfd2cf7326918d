"""The Streamlit app's pages and their helpers: the only part of fpi that imports streamlit.

Pages lay out widgets and call the package (`fpi.scoring`, `fpi.dashboard`,
`fpi.charts`, `fpi.explain`, `fpi.evaluate`, `fpi.registry`); session state
lives behind `fpi.ui.state`, caches behind `fpi.ui.services`.
"""
