"""Who did something: a name or e-mail that a person can read, never blank or invisible.

A verdict, an adjudication and a model change each carry who made them. A name
made only of spaces, zero-width characters or control characters would make
them anonymous in effect, so such names are refused.
"""
from __future__ import annotations

import unicodedata

__all__ = ["MAX_NAME", "clean_name"]

MAX_NAME = 320
"""The longest name or e-mail address kept (an e-mail address is at most 320 characters)."""

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
"""Control, format (zero-width space, joiners, bidi marks), unassigned, separators and lone combining marks."""


def clean_name(name: object) -> str:
    """`name` NFC-normalised and trimmed of invisible characters at both ends.

    Raises `ValueError` (saying what was found) when nothing visible is left, or when the name holds
    control characters, which would let it rewrite what a terminal or a log shows.
    """
    text = unicodedata.normalize("NFC", str(name) if name is not None else "")
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start]) in _INVISIBLE_CATEGORIES:
        start += 1
    while end > start and unicodedata.category(text[end - 1]) in _INVISIBLE_CATEGORIES:
        end -= 1
    cleaned = text[start:end]
    if not cleaned:
        shown = text.encode("unicode_escape").decode("ascii")[:40]
        raise ValueError(f"got {shown!r}, which has no visible character; type a name or e-mail")
    control = [c for c in cleaned if unicodedata.category(c) == "Cc"]
    if control:
        raise ValueError(f"the name holds a control character ({control[0].encode('unicode_escape').decode('ascii')}); "
                         "type it without")
    return cleaned
