"""The failure budget: a trial that always fails stops its worker with one line, and frees its memory."""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from hpstudy.objectives import TrialContext
from hpstudy.storage import open_storage
from hpstudy.studies.cli.run import main
from hpstudy.studies.spec.model import load_spec
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker import Worker

Spec = Callable[..., dict[str, Any]]
NAN = {"type": "formula", "steps": 1, "target": float("nan")}


def test_always_failing_trials_stop_the_worker_with_one_line(
        write_spec: Callable[..., Path], formula: Spec, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(formula(n_trials=1, objective=NAN, max_consecutive_failures=3))
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "3 consecutive failed trials" in lines[0]
    assert "3 failed in all" in lines[0]
    assert "ValueError: objective returned a non-finite value" in lines[0]
    traceback = Path(lines[0].rsplit("traceback: ", 1)[1])
    assert traceback.is_file()
    assert "ValueError" in traceback.read_text()
    study = optuna.load_study(study_name="formula", storage=open_storage(sqlite_url, writer=False))
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL] * 3
    # The count is the worker's own streak: a rerun gets a fresh budget, and the study-wide count grows.
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 3
    assert "6 failed in all" in capsys.readouterr().err


def test_a_success_resets_the_streak(write_spec: Callable[..., Path], formula: Spec, sqlite_url: str) -> None:
    path = write_spec(formula(n_trials=3, max_consecutive_failures=2,
                              space={"x": {"type": "float", "low": -1, "high": 1}}))
    study = optuna.create_study(study_name="formula", storage=sqlite_url, direction="minimize")
    for x in (float("nan"), 0.5, float("nan"), 0.2, float("nan")):  # never two failures in a row
        study.enqueue_trial({"x": x})
    assert main([str(path), "--storage", sqlite_url, "--quiet"]) == 0
    states = [t.state for t in study.get_trials()]
    assert states.count(TrialState.FAIL) == 3
    assert states.count(TrialState.COMPLETE) == 3


class _HeavyFailure:
    """Builds a "trainer" of 16 MB and 20,000 Python objects in a reference cycle (as Lightning's trainer
    and its loops are), then raises from a frame that holds it: only a full garbage collection frees it,
    since the objects made while building it moved it to the oldest generation."""

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        payload = bytearray(16 << 20)
        payload[::4096] = b"x" * len(payload[::4096])  # touch every page: it counts in the RSS
        trainer: dict[str, Any] = {"weights": payload}
        trainer["loop"] = {"trainer": trainer}
        trainer["modules"] = [[i] for i in range(20_000)]

        def fail() -> None:
            raise RuntimeError(f"cannot train ({len(payload)} bytes held)")

        fail()
        return {}


@pytest.mark.parametrize("objective", ["formula", "heavy"])
def test_200_failing_trials_grow_the_worker_by_less_than_50_mb(
        objective: str, write_spec: Callable[..., Path], formula: Spec, sqlite_url: str) -> None:
    # A worker's heap holds torch and Lightning: hundreds of thousands of long-lived objects, so Python's
    # full collection (what frees a cycle) comes rarely on its own.
    import lightning  # noqa: F401

    path = write_spec(formula(n_trials=1, objective=NAN, max_consecutive_failures=200, storage=sqlite_url))
    spec = load_spec(path)
    study = open_study(spec, open_storage(sqlite_url))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    worker = Worker(spec=spec, study=study, device="cpu",
                    objective=_HeavyFailure() if objective == "heavy" else None)  # type: ignore[arg-type]
    gc.collect()
    before = psutil.Process().memory_info().rss
    result = worker.run()
    grown = psutil.Process().memory_info().rss - before
    assert result.gave_up
    assert "200 consecutive failed trials" in result.gave_up
    assert len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) == 200
    assert grown < 50 << 20, f"RSS grew by {grown / 2**20:.0f} MiB over 200 failing trials"
