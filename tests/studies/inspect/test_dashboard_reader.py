"""The dashboard is a reader of a SQLite study: the runner sees no second writer and never fails for it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage

Spec = Callable[..., dict[str, Any]]


@pytest.mark.slow  # a real dashboard server and 300 trials: about 40 s on 2 cores
def test_a_polling_dashboard_never_disturbs_a_300_trial_study(
        write_spec: Callable[..., Path], formula: Spec, tmp_path: Path, api: Callable[[str], Any],
        serve_dashboard: Callable[[str, Path], str],
        start_cli: Callable[..., subprocess.Popen[str]]) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    base = serve_dashboard(url, tmp_path / "artifacts" / "_store")  # opened first, as a user would
    path = write_spec(formula(n_trials=300, objective={"type": "formula", "steps": 2},
                              sampler={"name": "random", "seed": 0}))
    runner = start_cli(str(path), "--storage", url, "--quiet")
    polls = 0
    while runner.poll() is None:
        studies = api(f"{base}/api/studies")
        for study in studies["study_summaries"]:
            api(f"{base}/api/studies/{study['study_id']}?after=0")
        polls += 1
    out, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0, out
    assert "another process is writing" not in out
    assert "database is locked" not in out
    assert polls >= 3  # the dashboard was read throughout the run
    study = optuna.load_study(study_name="formula", storage=open_storage(url, writer=False))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(TrialState.COMPLETE) == 300
    assert TrialState.FAIL not in states
