"""report.html: the reviewer's page for a plan, a batch or a sweep.

Self-contained: one HTML file with inline CSS and inline SVG charts (solver/render/svg.py and the
chart modules), no script, no font, no image or stylesheet fetched from anywhere, so it opens the
same in any browser, offline, or as an e-mail attachment. Pages are rendered from Jinja2 templates
in solver/render/templates/ with autoescaping on; only the SVG the chart modules produce (which
escape their own text) is marked safe. plan_page.py renders a plan's page, run_page.py a batch's
or a sweep's; this module holds what they share.
"""

from __future__ import annotations

import json
import math
import re
import sys
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment of every page (templates/*.j2, autoescaped, the `num` filter)."""
    env = Environment(
        loader=PackageLoader("solver.render", "templates"),  # package data (importlib.resources)
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = number
    env.filters["breakable"] = breakable
    return env


def breakable(text: Any) -> Markup:
    """Text that may wrap after `.`, `_`, `=`, `-` and `/` (long point names, dotted keys), escaped."""
    escaped = str(escape(str(text)))
    return Markup(re.sub(r"([._=/-])", r"\1<wbr>", escaped))


def number(value: Any, digits: int = 3) -> str:
    """Table cell text: thousands separators, a few significant digits, '-' for missing."""
    if value is None or is_pandas_na(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(digits - 1, 1)}f}"
    return str(value)


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, value text) of every leaf of a condition; long values cut at 160 characters."""
    if isinstance(data, dict) and data:
        rows: list[tuple[str, str]] = []
        for key, value in data.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    text = json.dumps(data) if isinstance(data, (list, dict)) else str(data)
    return [(prefix, text if len(text) <= 160 else text[:157] + "...")]


def is_pandas_na(value: Any) -> bool:
    """pandas.NA without importing pandas: a value can only be NA when pandas is loaded."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NA
