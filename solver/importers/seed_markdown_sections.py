"""The layout of a seed markdown file: `## **Section**` headings, then `* **Field**: value` bullets.

`parse_sections` splits a file into its sections' lines (every line must be a heading, a bullet or
ignorable); `SectionReader` hands one section's lines to the readers by field-name patterns and
refuses any line none of them claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from solver.errors import InputError
from solver.importers.common import Imported, as_int, one_number, origin
from solver.importers.labels import Meaning

_HEADING = re.compile(r"^\s*#{1,6}\s+\**\s*(?P<title>[^*]+?)\s*\**\s*$")
_BULLET = re.compile(r"^\s*[*+-]\s+(?:\*\*(?P<key>[^*]+?)\*\*|(?P<plain>[^*:=]+?)\s*[:=])"
                     r"\s*(?P<value>.*)$")
_IGNORED = re.compile(r"^\s*(```.*|-{3,}|\*{3,}|_{3,}|#\S.*)?\s*$")  # fences, rules, #tags, blank


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    key: str  # normalized field name
    value: str


SECTIONS = {
    "environment": ("environment", "hardware", "cluster"),
    "model": ("model",),
    "input": ("input", "workload"),
    "requirements": ("performance", "requirement", "slo"),
    "strategy": ("parallel", "strategy"),
}


def _section_of(title: str) -> str | None:
    lowered = title.lower()
    for name, words in SECTIONS.items():
        if any(w in lowered for w in words):
            return name
    return None


def _normalize(key: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9%/+-]+", " ", key.lower().rstrip(":")).split())


def parse_sections(text: str, source: str) -> dict[str, list[Line]]:
    sections: dict[str, list[Line]] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        heading = _HEADING.match(raw)
        if heading:
            current = _section_of(heading.group("title"))
            if current is None:
                raise InputError(
                    source,
                    f'line {number} "{raw.strip()}"',
                    "unknown section; expected Environment Condition, Model "
                    "Configuration, Input Data, Basic Performance Requirements or "
                    "Parallelism Strategy",
                )
            if current in sections:
                raise InputError(source, f'line {number} "{raw.strip()}"', "section given twice")
            sections[current] = []
            continue
        if _IGNORED.match(raw):
            continue
        bullet = _BULLET.match(raw)
        if bullet is None or current is None:
            reason = (
                "not a '* **Field**: value' line"
                if current
                else "text before the first section heading"
            )
            raise InputError(source, f'line {number} "{raw.strip()}"', reason)
        value = bullet.group("value").strip().lstrip(":=").strip()
        key = bullet.group("key") or bullet.group("plain")
        sections[current].append(Line(number, raw.strip(), _normalize(key), value))
    if not sections:
        raise InputError(
            source, "", "no '## **Section**' headings found: not a seed markdown condition"
        )
    return sections


class SectionReader:
    """Reads one section's lines by field-name patterns; every line must be claimed by a reader."""

    def __init__(self, imported: Imported, section: str, lines: list[Line]) -> None:
        self.imp, self.section, self.lines = imported, section, lines
        self.claimed: set[int] = set()

    @property
    def source(self) -> str:
        return self.imp.source

    def where(self, line: Line) -> str:
        return f'line {line.number} "{line.text}"'

    def origin(self, line: Line) -> str:
        return origin(self.imp.source, line.number, line.text)

    def find(self, *patterns: str, exclude: tuple[str, ...] = ()) -> Line | None:
        for line in self.lines:
            if line.number in self.claimed:
                continue
            if any(re.search(p, line.key) for p in patterns) and not any(
                re.search(x, line.key) for x in exclude
            ):
                self.claimed.add(line.number)
                return line
        return None

    def meaning(self, meaning: Meaning) -> Line | None:
        """The first unclaimed line whose label means `meaning` (importers/labels.py), claimed."""
        for line in self.lines:
            if line.number not in self.claimed and meaning.matches(line.key):
                self.claimed.add(line.number)
                return line
        return None

    def finish(self) -> None:
        for line in self.lines:
            if line.number not in self.claimed:
                raise InputError(
                    self.source,
                    self.where(line),
                    f"field not understood in the {self.section} section",
                )

    # ---- value parsers bound to a line (errors quote it) ----
    def number(self, line: Line) -> float:
        return one_number(line.value, self.source, self.where(line))

    def integer(self, line: Line) -> int:
        return as_int(self.number(line), self.source, self.where(line))


def states_none(value: str) -> bool:
    """A value that says there is no requirement ("None", "N/A", "-", empty)."""
    return value.strip().rstrip(".").lower() in ("none", "n/a", "na", "-", "no requirement", "")


MAX_NUMBER_DIGITS = 30  # far above any real figure; longer digit runs overflow int() and float()


def refuse_huge_numbers(text: str, source: str) -> None:
    """Refuse a digit run longer than any real figure, before anything converts it."""
    for number, line in enumerate(text.splitlines(), start=1):
        digits = re.search(rf"\d{{{MAX_NUMBER_DIGITS + 1},}}", line)
        if digits:
            raise InputError(source, f"line {number}", f"a number of {len(digits.group())} digits "
                             f"(paraplan reads at most {MAX_NUMBER_DIGITS})")

