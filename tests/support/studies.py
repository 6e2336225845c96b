"""Run a spec's study in this process, and the deterministic pruner the pruning tests use."""

from __future__ import annotations

from pathlib import Path

import optuna

from hpstudy.storage import open_storage
from hpstudy.studies import Worker, load_spec, open_study


class AlwaysPrune(optuna.pruners.BasePruner):
    """Prunes at the first report: proves a backend's pruning path."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def run_study(path: Path, url: str, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Open the spec's study on ``url`` (``pruner`` replacing the spec's) and fill it with one CPU worker."""
    spec = load_spec(path)
    study = open_study(spec, open_storage(url))
    if pruner is not None:
        study.pruner = pruner
    Worker(spec=spec, study=study, device="cpu").run()
    return study
