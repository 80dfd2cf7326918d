"""Escaping for the few Streamlit places that only take Markdown."""
from __future__ import annotations

CACHE_TTL = "1h"
"""How long any cached table or frame is kept after its last use, on top of each cache's
`max_entries`: an app process serves many sessions, and one upload's frames must not stay
in memory for the life of the server."""

_MARKDOWN_SPECIALS = "\\`*_{}[]()<>#+-.!|~$:"


def md_escape(text: object) -> str:
    """`text` with every Markdown/HTML special character escaped, for the few places that only take Markdown
    (error boxes, status labels, toasts): a file name like `**x**.csv` then shows as typed."""
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIALS else c for c in str(text))
