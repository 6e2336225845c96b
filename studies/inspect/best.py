"""What "best" means, in one place: the summary, the report's leaderboard and ``export_best`` all use it.

Only feasible COMPLETE trials compete (every constraint <= 0, as Optuna's ``best_trial`` has it).

- Single objective: ordered by the value in the study's direction.
- Multi-objective: ordered by Pareto front first (non-domination rank; front 1 is the Pareto set, what
  Optuna's ``study.best_trials`` returns), then the same tie-break.
- Tie-break (stated, and the same everywhere): the first objective in its direction, then the next
  objectives in theirs, then the lower trial number (the earlier trial wins).

"The best trial" is the first of that order; for a multi-objective study it is one member of the Pareto set
(the best in the first metric), and the whole set is :func:`pareto_set`.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpstudy.studies.inspect.annotate import is_feasible

TIE_BREAK = "Pareto front, then the first metric, then the next ones, then the lower trial number"


def ranked_trials(study: optuna.Study) -> list[tuple[int, FrozenTrial]]:
    """Feasible COMPLETE trials, best first, each with its Pareto front (1: the Pareto set)."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.values is not None and is_feasible(t)]
    if not trials:
        return []
    signs = np.array([1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in study.directions])
    losses = np.array([t.values for t in trials], dtype=float) * signs  # everything minimised
    fronts = _fronts(losses)
    order = sorted(range(len(trials)), key=lambda i: (fronts[i], *losses[i], trials[i].number))
    return [(int(fronts[i]), trials[i]) for i in order]


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best trial by the order of :func:`ranked_trials`; None when no feasible trial completed."""
    order = ranked_trials(study)
    return order[0][1] if order else None


def pareto_set(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto-optimal feasible trials in the order of :func:`ranked_trials` (one trial when single-objective)."""
    order = ranked_trials(study)
    if len(study.directions) == 1:
        return [order[0][1]] if order else []
    return [t for front, t in order if front == 1]


def _fronts(losses: np.ndarray) -> np.ndarray:
    """Non-domination rank of each row (1 = not dominated by any), all objectives minimised."""
    if losses.shape[1] == 1:
        return np.ones(len(losses), dtype=int)
    from optuna.study._multi_objective import _fast_non_domination_rank

    # Optuna's own non-dominated sort (private; checked against Optuna 5.0): what best_trials is built on.
    return np.asarray(_fast_non_domination_rank(losses), dtype=int) + 1
