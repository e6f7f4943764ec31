"""User-given text (condition names, card names, paths) made safe to show: on a terminal and in
Markdown. report.html needs nothing here: Jinja2 autoescapes it."""

from __future__ import annotations

import re
import unicodedata

# Markdown punctuation that could start emphasis, strikethrough, a link, code or a table cell, or
# close a heading; `_` only at a word's edge (inside a word it is literal: llama_70b).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]#|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")


def _shown(ch: str) -> str:
    """A control or format character (ESC, CR, BEL, bidi overrides, zero-width) as a visible
    escape such as \\x1b or \\u202e; anything else as it is."""
    if unicodedata.category(ch) not in ("Cc", "Cf"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """`text` with every control character but newline and tab shown as an escape, so a name
    cannot move the cursor, clear the screen, change the window title or reorder the line."""
    return "".join(ch if ch in "\n\t" else _shown(ch) for ch in str(text))


def for_markdown(text: str) -> str:
    """One line of literal text for Markdown: control characters shown as escapes (newlines too:
    no new headings), < and > as entities (no raw HTML), Markdown punctuation escaped."""
    visible = "".join(_shown(ch) for ch in str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", visible).replace("<", "&lt;").replace(">", "&gt;")


def markdown_code(text: str) -> str:
    """`text` as a Markdown code span (paths): a fence longer than any run of backticks inside,
    control characters shown as escapes."""
    visible = "".join(_shown(ch) for ch in str(text))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", visible)), default=0) + 1)
    pad = " " if visible.startswith("`") or visible.endswith("`") else ""
    return f"{fence}{pad}{visible}{pad}{fence}"
