"""Study specs and the code that turns a spec into an Optuna study and fills it with trials."""

from __future__ import annotations

from hpstudy.studies.errors import ConfigError, SpecError
from hpstudy.studies.spec.model import StudySpec, load_spec, validate_spec
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker import Worker, WorkerResult

__all__ = [
    "ConfigError",
    "SpecError",
    "StudySpec",
    "Worker",
    "WorkerResult",
    "load_spec",
    "open_study",
    "validate_spec",
]
