"""The seed markdown layout (solver/importers/seed_markdown_sections.py): headings to sections,
bullets to lines, and every line claimed by a reader or refused with its number."""

from __future__ import annotations

import pytest

from solver.errors import InputError
from solver.importers.common import Imported
from solver.importers.seed_markdown_sections import (
    SectionReader,
    parse_sections,
    refuse_huge_numbers,
    states_none,
)

TEXT = """## **Environment Condition**
* **NPUs**: 16

---
## **Model Configuration**
- **Token Dimension**: 4096
* **Precision**: FP8
"""


def test_sections_hold_their_bullets_with_line_numbers_and_normalized_keys():
    sections = parse_sections(TEXT, "x.md")
    assert list(sections) == ["environment", "model"]
    line = sections["model"][0]
    assert (line.number, line.key, line.value) == (6, "token dimension", "4096")


@pytest.mark.parametrize(
    "text,message",
    [
        ("## **Favourite Colours**\n", "unknown section"),
        ("## Model\n## Model Configuration\n", "section given twice"),
        ("* **NPUs**: 16\n", "text before the first section heading"),
        ("## Model\nprose\n", "not a '* **Field**: value' line"),
        ("\n\n", "no '## **Section**' headings found"),
    ],
)
def test_layout_errors_name_the_line(text, message):
    with pytest.raises(InputError) as error:
        parse_sections(text, "x.md")
    assert message in str(error.value)


def test_reader_claims_lines_once_and_refuses_the_rest():
    lines = parse_sections(TEXT, "x.md")["model"]
    reader = SectionReader(Imported(source="x.md", kind="condition"), "Model Configuration", lines)
    found = reader.find(r"token dimension")
    assert found is not None and reader.integer(found) == 4096
    assert reader.find(r"token dimension") is None  # claimed already
    with pytest.raises(InputError, match=r'line 7 "\* \*\*Precision\*\*: FP8": field not understood'):
        reader.finish()


def test_none_values_and_huge_numbers():
    assert states_none("N/A.") and states_none("none") and not states_none("30s")
    refuse_huge_numbers("9" * 30, "x.md")
    with pytest.raises(InputError, match="line 2: a number of 31 digits"):
        refuse_huge_numbers("ok\n" + "9" * 31, "x.md")
