"""Start-up cost: import OR-Tools' CP-SAT without importing pandas.

`ortools.sat.python.cp_model` imports pandas (and with it pyarrow) at module level for its
`*_series` helpers (`new_int_var_series`, `CpSolver.values`, ...), which paraplan never calls. That
import is about 60% of `from ortools.sat.python import cp_model` (200 of 330 ms measured; a dense
solve's planning, CP-SAT search and rendering together take under 100 ms), so the CLI loads cp_model
through `import_cp_model()` first:

- while cp_model's module body runs, `pandas` is a stand-in whose attributes are placeholder
  classes: they only appear in type annotations and one module-level `Union[pd.Index, pd.Series]`;
- once cp_model is loaded, the stand-in leaves `sys.modules` (a later `import pandas` gets the real
  one) and, as cp_model's `pd`, forwards every attribute to the real pandas, imported on first use,
  so the series helpers still work (they just pay the pandas import when called);
- if the import fails with the stand-in for any reason (a future OR-Tools that calls pandas at
  import time), cp_model is imported the ordinary way. When pandas is already loaded, nothing special
  happens.

The library modules (formulation.py, placement.py) import cp_model the ordinary way; whichever
import runs first decides, and both give the same module.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from typing import Any

log = logging.getLogger(__name__)

CP_MODEL = "ortools.sat.python.cp_model"


class _PandasStandIn(types.ModuleType):
    """`pandas` for the duration of cp_model's import; afterwards a forwarder to the real one."""

    def __init__(self) -> None:
        super().__init__("pandas", "stand-in while ortools.sat.python.cp_model is imported")
        self._importing = True
        self._placeholders: dict[str, type] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._importing:  # annotations and type aliases in cp_model's module body
            return self._placeholders.setdefault(name, type(name, (), {"__module__": "pandas"}))
        return getattr(importlib.import_module("pandas"), name)


def import_cp_model() -> types.ModuleType:
    """`ortools.sat.python.cp_model`, imported without pandas when that is possible."""
    if CP_MODEL in sys.modules or "pandas" in sys.modules:
        return importlib.import_module(CP_MODEL)
    stand_in = _PandasStandIn()
    sys.modules["pandas"] = stand_in
    try:
        module = importlib.import_module(CP_MODEL)
    except Exception as exc:  # noqa: BLE001 - fall back to the ordinary import below
        log.debug("cp_model did not import with a pandas stand-in (%s); importing pandas", exc)
        sys.modules.pop(CP_MODEL, None)
        module = None
    finally:
        stand_in._importing = False
        if sys.modules.get("pandas") is stand_in:
            del sys.modules["pandas"]
    return module if module is not None else importlib.import_module(CP_MODEL)
