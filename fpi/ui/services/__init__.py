"""Caches and state changes behind the pages: the only code the pages call besides widgets."""
