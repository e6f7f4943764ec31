"""Test order: browser tests last.

.ci/run installs Chromium in the background while the suite runs; the browser test (marked
`browser`, tests/render/test_plan_page.py) waits for that install to end, so it goes last to wait least.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)  # stable
