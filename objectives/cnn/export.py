"""The CNN backend's export: a trial as the ``objective:`` block of a spec that trains it again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpstudy.objectives.base import ObjectiveSettings


def objective_block(settings: ObjectiveSettings, params: Mapping[str, Any],
                    filename: str) -> tuple[dict[str, Any], str]:
    """The settings the study fixed (as its spec gave them) with the trial's values, and how to use them."""
    del filename  # the block is pasted into a spec, not passed by name
    return ({"objective": {**settings.model_dump(exclude_unset=True), **params}},
            "as the objective: block of a spec with no space (or hpstudy run SPEC --set ...)")
