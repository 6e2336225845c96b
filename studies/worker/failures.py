"""The failure budget: a worker stops starting trials after K consecutive failures of its own.

A trial that fails every time (a model that cannot run at this image size, an objective that returns NaN)
would otherwise fill the study with FAIL trials forever, one run directory each. Trials lost to a race
(``surplus``) or stopped by a signal are not failures of the configuration and do not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpstudy.storage import count_by_state
from hpstudy.studies.worker import resume

#: How long the last reason may be in the one-line message.
REASON_CHARS = 240


@dataclass
class FailureBudget:
    """Counts this worker's consecutive FAIL trials.

    Args:
        limit: Stop after this many in a row; None: never stop.
    """

    limit: int | None
    streak: int = 0
    last_reason: str = ""
    last_traceback: Path | None = None

    def record(self, trial: optuna.trial.FrozenTrial) -> None:
        """Count a finished trial: a FAIL extends the streak, a COMPLETE or PRUNED one ends it."""
        if trial.state != TrialState.FAIL:
            self.streak = 0
            return
        reason = str(trial.user_attrs.get("fail_reason") or "no reason recorded")
        if reason.startswith("surplus") or resume.was_interrupted(reason):
            return
        self.streak += 1
        self.last_reason = " ".join(reason.split())  # one line, whatever the exception printed
        run_dir = trial.user_attrs.get("run_dir")
        path = Path(run_dir) / "traceback.txt" if run_dir else None
        self.last_traceback = path if path is not None and path.is_file() else None

    @property
    def spent(self) -> bool:
        """Whether the worker must stop starting trials."""
        return self.limit is not None and self.streak >= self.limit

    def message(self, study: optuna.Study) -> str:
        """The one line the worker exits with: how many failed, the last reason, where its traceback is."""
        failed = count_by_state(study).get(TrialState.FAIL, 0)
        reason = self.last_reason
        if len(reason) > REASON_CHARS:
            reason = reason[:REASON_CHARS - 3] + "..."
        where = f"traceback: {self.last_traceback}" if self.last_traceback else "no traceback (no exception)"
        return (f"error: worker stopped after {self.streak} consecutive failed trials "
                f"(max_consecutive_failures; study {study.study_name!r} has {failed} failed in all); "
                f"last: {reason}; {where}")
