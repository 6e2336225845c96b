"""Stage 1: the study spec. YAML in, a validated :class:`StudySpec` out (search space, sampler and pruner
settings included), or one :class:`SpecError` line. Nothing here touches a storage or trains."""

from __future__ import annotations

from hpstudy.studies.spec.model import (
    DEFAULT_ARTIFACTS,
    DEFAULT_STORAGE,
    MemorySpec,
    StudySpec,
    load_spec,
    validate_spec,
)
from hpstudy.studies.spec.pruners import PrunerSpec, build_pruner
from hpstudy.studies.spec.samplers import SamplerSpec, build_sampler
from hpstudy.studies.spec.space import ParamSpec, distributions, suggest

__all__ = [
    "DEFAULT_ARTIFACTS",
    "DEFAULT_STORAGE",
    "MemorySpec",
    "ParamSpec",
    "PrunerSpec",
    "SamplerSpec",
    "StudySpec",
    "build_pruner",
    "build_sampler",
    "distributions",
    "load_spec",
    "suggest",
    "validate_spec",
]
