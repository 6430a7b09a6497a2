"""Render a card's detail Markdown as HTML that cannot run script (for the playground).

markdown-it-py (the CommonMark parser rich uses for the terminal too) with raw HTML disabled:
any `<img onerror=...>` or `<script>` in the Markdown, e.g. from a Medication's text, comes out
as escaped text, and link targets pass its URL validation (no `javascript:`, `vbscript:`,
`file:` or non-image `data:` URLs). So no separate sanitiser is needed: no path lets HTML
through. Links open in a new tab without the opener.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict


def _link_open(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    index: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    tokens[index].attrSet("target", "_blank")
    tokens[index].attrSet("rel", "noopener noreferrer")
    return str(renderer.renderToken(tokens, index, options, env))


def _markdown() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    parser.add_render_rule("link_open", _link_open)
    return parser


_PARSER = _markdown()


def markdown_to_html(text: str) -> str:
    """Return `text` (CommonMark with tables) as HTML with every raw HTML tag escaped."""
    return str(_PARSER.render(text))
