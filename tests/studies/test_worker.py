"""The worker loop: exact trial counts across restarts and processes, interrupts, failing trials."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.studies.cli.run import main

Spec = Callable[..., dict[str, Any]]


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(url, writer=False)).get_trials()


def _wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll a condition on the storage with a deadline (the storage is the synchronisation point)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_resume_counts_trials_across_runs(write_spec: Callable[..., Path], formula: Spec, sqlite_url: str) -> None:
    path = write_spec(formula(n_trials=3))
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    assert main([str(path), "--storage", sqlite_url, "--quiet", "--n-trials", "5"]) == 0
    trials = _trials(sqlite_url, "formula")
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # A full study does no new trial.
    assert main([str(path), "--storage", sqlite_url, "--quiet", "--n-trials", "5"]) == 0
    assert len(_trials(sqlite_url, "formula")) == 5


def test_every_trial_records_what_a_user_needs(write_spec: Callable[..., Path], formula: Spec,
                                               sqlite_url: str) -> None:
    path = write_spec(formula(n_trials=2))
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    for t in _trials(sqlite_url, "formula"):
        assert t.user_attrs["device"] == "cpu"
        assert t.user_attrs["wall_time_s"] >= 0
        assert Path(t.user_attrs["run_dir"]).is_dir()
        assert t.user_attrs["epochs_run"] == 3
        assert set(t.user_attrs["metrics"]) == {"loss", "size"}


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_two_processes_share_one_study_exactly(backend: str, write_spec: Callable[..., Path], formula: Spec,
                                                tmp_path: Path,
                                                start_cli: Callable[..., subprocess.Popen[str]]) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else f"journal://{tmp_path / 'j.log'}"
    path = write_spec(formula(n_trials=6, objective={"type": "formula", "steps": 2, "sleep": 0.05}))
    procs = [start_cli(str(path), "--storage", url, "--quiet") for _ in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out
    trials = _trials(url, "formula")
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6
    assert len({t.number for t in trials}) == len(trials)
    assert all(t.value is not None for t in finished)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_fails_the_running_trial_and_sigterm_requeues_it(
    sig: signal.Signals, write_spec: Callable[..., Path], formula: Spec, sqlite_url: str,
    start_cli: Callable[..., subprocess.Popen[str]],
) -> None:
    path = write_spec(formula(n_trials=3, objective={"type": "formula", "steps": 400, "sleep": 0.05},
                              pruner={"name": "threshold", "upper": 1.0e9}))  # reports every step
    proc = start_cli(str(path), "--storage", sqlite_url, "--quiet")

    def running() -> bool:
        try:
            return any(t.state == TrialState.RUNNING and t.intermediate_values
                       for t in _trials(sqlite_url, "formula"))
        except KeyError:
            return False  # the study is not created yet

    _wait_for(running, timeout=60, what="a running trial with a reported step")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out
    assert "Traceback" not in out, out
    trials = _trials(sqlite_url, "formula")
    if sig == signal.SIGINT:
        # Ctrl-C: a person stopped the study; its trial is FAIL and nothing WAITING or RUNNING is left.
        assert [t.state for t in trials] == [TrialState.FAIL]
        assert trials[0].user_attrs["fail_reason"] == "interrupted by SIGINT"
        return
    # SIGTERM: the stopped trial is FAIL with its reason, and queued again (as SLURM preemption needs)
    # with its parameters and the steps it reported.
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    stopped, queued = trials
    assert stopped.user_attrs["fail_reason"] == f"interrupted by {sig.name}"
    assert queued.params == stopped.params
    assert queued.intermediate_values == stopped.intermediate_values
    assert len(stopped.intermediate_values) >= 1

    fast = write_spec(formula(n_trials=3, objective={"type": "formula", "steps": 400},
                              pruner={"name": "threshold", "upper": 1.0e9}), "fast.yaml")
    assert main([str(fast), "--storage", sqlite_url, "--quiet", "--allow-objective-change"]) == 0
    trials = _trials(sqlite_url, "formula")
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 3
    assert states.count(TrialState.FAIL) == 1
    retry = trials[1]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["retry_of"] == 0
    assert f"interrupted by {sig.name}" in retry.user_attrs["retry_reason"]
    assert retry.user_attrs["first_step"] == max(stopped.intermediate_values) + 1  # resumed, not restarted
    assert sorted(retry.intermediate_values) == list(range(400))


def test_a_trial_that_raises_is_a_fail_with_its_reason_and_the_worker_goes_on(
    write_spec: Callable[..., Path], formula: Spec, sqlite_url: str
) -> None:
    # A categorical the formula cannot square: its objective raises for that trial only.
    spec = formula(n_trials=3, space={"x": {"type": "float", "low": -1, "high": 1}})
    path = write_spec(spec)
    study = optuna.create_study(study_name="formula", storage=sqlite_url, direction="minimize")
    study.enqueue_trial({"x": float("nan")})
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    trials = _trials(sqlite_url, "formula")
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1
    assert failed[0].user_attrs["fail_reason"]
