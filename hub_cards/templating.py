"""The Jinja environment shared by the card templates in `hub_cards/templates/`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _grouped(number: int) -> str:
    return f"{number:,}"


def _fixed(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def _percent(fraction: float, digits: int = 2) -> str:
    return f"{100.0 * fraction:.{digits}f}"


def _millions(number: float, digits: int = 2) -> str:
    return f"{number / 1e6:.{digits}f} M"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """A strict environment: a template naming a value the renderer did not pass fails instead of printing ''."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(grouped=_grouped, fixed=_fixed, percent=_percent, millions=_millions)
    return env


def render_body(template_name: str, **values: Any) -> str:
    """Renders the Markdown body of a card (everything below the YAML block)."""
    return environment().get_template(template_name).render(**values)
