"""Cut text to a length for a card, a log line or an error: the one truncation of the project."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int, *, collapse_whitespace: bool = False) -> str:
    """Return `text` at most `limit` characters long, ending in "…" when it was cut."""
    if collapse_whitespace:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS
