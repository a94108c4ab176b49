"""The one card renderer: a Jinja environment over `hub_cards/templates/` (one template per card kind) that escapes
every value it inserts.

Values come from files and publishers (dataset names, attack names, paths, recipe values, training-data notes), so
each `{{ value }}` is escaped for Markdown and HTML on the way in (`escape_markdown`): it cannot open a heading, a
table cell, a link, a code span or an HTML tag, and stays on its line. Text this package writes in Markdown on
purpose is wrapped in `MarkdownText` and inserted as it is; numbers pass unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).parent / "templates"
# Characters that would start Markdown or HTML syntax inside a line of a card, and their escaped forms.
_MARKDOWN_ESCAPES = {
    "\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]", "#": "\\#", "|": "\\|",
    "<": "&lt;", ">": "&gt;", "&": "&amp;",
}


class MarkdownText(str):
    """Text already written in Markdown by this package: the renderer inserts it unescaped."""


def escape_markdown(value: Any) -> Any:
    """`value` as literal text on one line of a Markdown card (newlines and tabs become spaces); numbers and
    `MarkdownText` unchanged."""
    if isinstance(value, (MarkdownText, int, float)):
        return value
    text = str(value)
    if any(character in text for character in "\r\n\t\v\f\x85\u2028\u2029"):
        text = " ".join(text.split())
    return "".join(_MARKDOWN_ESCAPES.get(character, character) for character in text)


def _fenced(value: str, language: str = "") -> MarkdownText:
    """`value` as a fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return MarkdownText(f"{fence}{language}\n{value.strip(chr(10))}\n{fence}")


def _grouped(number: int) -> str:
    return f"{number:,}"


def _fixed(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def _percent(fraction: float, digits: int = 2) -> str:
    return f"{100.0 * fraction:.{digits}f}"


def _millions(number: float, digits: int = 2) -> str:
    return f"{number / 1e6:.{digits}f} M"


@lru_cache(maxsize=1)
def environment() -> "jinja2.Environment":
    """A strict environment: a template naming a value the renderer did not pass fails instead of printing ''."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=escape_markdown,
    )
    env.filters.update(grouped=_grouped, fixed=_fixed, percent=_percent, millions=_millions, fenced=_fenced)
    return env


def render_body(template_name: str, **values: Any) -> str:
    """Renders the Markdown body of a card (everything below the YAML block)."""
    return environment().get_template(template_name).render(**values)
