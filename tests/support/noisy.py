"""A backend that talks like Ultralytics: a logger whose handler holds the import-time ``sys.stdout``,
progress written to ``sys.stderr``, and plain prints. Spec: ``objective: {type: "support.noisy:BACKEND"}``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from hpstudy.objectives.base import Backend, TrialContext
from hpstudy.objectives.formula import FormulaObjective, FormulaSettings

LOGGER = logging.getLogger("noisy_trainer")
if not LOGGER.handlers:
    LOGGER.addHandler(logging.StreamHandler(sys.stdout))  # as ultralytics.utils.set_logging does
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


class NoisyObjective(FormulaObjective):
    """The formula, with about 60 lines of trainer chatter per trial."""

    def __init__(self, settings: FormulaSettings) -> None:
        super().__init__(settings)

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        for epoch in range(20):
            LOGGER.info("NOISY-LOG epoch %d/20 box_loss 1.23", epoch)
            print(f"NOISY-PRINT validating {epoch}")
            sys.stderr.write(f"NOISY-PROGRESS {epoch * 5}%\n")
        return super().run(ctx)


BACKEND = Backend(name="noisy", settings="hpstudy.objectives.formula:FormulaSettings",
                  objective="support.noisy:NoisyObjective")
