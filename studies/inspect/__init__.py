"""Inspecting studies: what trials carry for optuna-dashboard, serving it, and a static report.

Importing this package imports neither Ultralytics nor Lightning (nor matplotlib until a plot is drawn).
"""

from __future__ import annotations

from hpstudy.studies.inspect.annotate import (
    LEGACY_CONSTRAINTS_ATTR,
    is_feasible,
    set_constraint,
    study_note_markdown,
    write_study_note,
)
from hpstudy.studies.inspect.dashboard import DashboardServer, create_server
from hpstudy.studies.inspect.report import SECTIONS, Report, write_report
from hpstudy.studies.memory.plot import plot_memory_map

__all__ = [
    "LEGACY_CONSTRAINTS_ATTR",
    "SECTIONS",
    "DashboardServer",
    "Report",
    "create_server",
    "is_feasible",
    "plot_memory_map",
    "set_constraint",
    "study_note_markdown",
    "write_report",
    "write_study_note",
]
