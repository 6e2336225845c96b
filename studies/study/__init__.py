"""Stage 2: the study. A validated spec opened on a storage: created with its sampler and pruner, or
loaded and checked against the spec it was made from."""

from __future__ import annotations

from hpstudy.studies.study.build import default_params, open_study, spec_summary

__all__ = ["default_params", "open_study", "spec_summary"]
