"""Render a hook answer for the terminal the way an EHR shows the card, with rich.

The card's detail is Markdown; rich parses it (CommonMark, via markdown-it-py) and draws its
tables, bold and code for the terminal, so the escapes the Markdown needs (`\\<5× ULN`,
`\\[IU\\]/L`) never show. On a terminal the indicator is coloured; piped or redirected, the
text is plain (no ANSI codes) and the first line reads `[CRITICAL] <summary>`. Nothing from
the request is ever read as rich markup: every string goes in as `Text` or Markdown.
"""

from __future__ import annotations

import io
import re
import shutil
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.text import Text

from cds_service.hooks.cards import no_card_text
from cds_service.hooks.evaluation import HookAnswer

_INDICATOR_STYLES = {"info": "bold blue", "warning": "bold yellow", "critical": "bold red"}
DEFAULT_WIDTH = 100


def render_answer(
    answer: HookAnswer,
    *,
    terminal: bool = False,
    width: int | None = None,
) -> str:
    """Return the answer as terminal text: coloured when `terminal`, plain otherwise."""
    console = Console(
        file=io.StringIO(),
        force_terminal=terminal,
        no_color=not terminal,
        color_system="standard" if terminal else None,
        width=width or (shutil.get_terminal_size().columns if terminal else DEFAULT_WIDTH),
        highlight=False,
        emoji=False,
        markup=False,
    )
    cards: list[dict[str, Any]] = answer.body["cards"]
    if not cards:
        console.print(Text(no_card_text(answer.evaluation)))
    for index, card in enumerate(cards):
        if index:
            console.print()
        for renderable in _card(card):
            console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    text = "\n".join(line.rstrip() for line in str(output).splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _card(card: dict[str, Any]) -> list[RenderableType]:
    indicator = str(card.get("indicator", "info"))
    heading = Text()
    heading.append(f"[{indicator.upper()}]", style=_INDICATOR_STYLES.get(indicator, "bold"))
    heading.append(" ")
    heading.append(str(card.get("summary", "")), style="bold")
    parts: list[RenderableType] = [heading, Text()]
    if card.get("detail"):
        parts.append(Markdown(str(card["detail"]), hyperlinks=False))
    for suggestion in card.get("suggestions", []):
        lines = [Text(f"Suggestion: {suggestion.get('label', '')}", style="bold")]
        for action in suggestion.get("actions", []):
            lines.append(Text(f"  - {action.get('type', '')}: {action.get('description', '')}"))
        parts.extend([Text(), Group(*lines)])
    reasons = "; ".join(str(r.get("display", "")) for r in card.get("overrideReasons", []))
    if reasons:
        parts.extend([Text(), Text(f"Override reasons: {reasons}")])
    source = card.get("source", {})
    source_text = Text(f"Source: {source.get('label', '')}")
    if source.get("url"):
        source_text.append(f" <{source['url']}>")
    parts.extend([Text(), source_text])
    return parts
