"""A trial's console output is the one hpstudy line; the trainer's own goes to its run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from hpstudy.storage import open_storage

Spec = Callable[..., dict[str, Any]]
REPO = Path(__file__).resolve().parents[2]
NOISY = {"type": "support.noisy:BACKEND", "steps": 1}  # tests/support/noisy.py


def _run(path: Path, url: str, *flags: str) -> str:
    """The runner as a user starts it: a new process, whose trainer binds the real stdout at import."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "run_study.py"), str(path), "--storage", url,
                           *flags], capture_output=True, text=True, timeout=120, env=env, cwd=path.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _run_dirs(url: str) -> list[Path]:
    study = optuna.load_study(study_name="formula", storage=open_storage(url, writer=False))
    return [Path(t.user_attrs["run_dir"]) for t in study.trials]


def test_the_trainers_output_goes_to_train_log(write_spec: Callable[..., Path], formula: Spec,
                                               sqlite_url: str) -> None:
    output = _run(write_spec(formula(n_trials=2, objective=NOISY)), sqlite_url)
    assert "NOISY" not in output
    assert len([line for line in output.splitlines() if line.startswith("trial ")]) == 2
    for run_dir in _run_dirs(sqlite_url):
        log = (run_dir / "train.log").read_text()
        assert log.count("NOISY-LOG") == 20
        assert log.count("NOISY-PRINT") == 20
        assert log.count("NOISY-PROGRESS") == 20


def test_verbose_shows_it_live_too(write_spec: Callable[..., Path], formula: Spec, sqlite_url: str) -> None:
    output = _run(write_spec(formula(n_trials=1, objective=NOISY)), sqlite_url, "--verbose")
    assert output.count("NOISY-LOG") == 20
    assert output.count("NOISY-PROGRESS") == 20
    (run_dir,) = _run_dirs(sqlite_url)
    assert (run_dir / "train.log").read_text().count("NOISY-PRINT") == 20


def test_hpstudys_own_warnings_during_a_trial_reach_the_console(tmp_path: Path) -> None:
    # A database outage mid-trial ("storage unreachable ... retrying") is for the person watching, not
    # for train.log: in a fresh process, with the runner's warning handler, from inside trainer_output.
    code = ("import logging, pathlib, sys\n"
            "from hpstudy.studies.cli.run import say_warnings\n"
            "from hpstudy.studies.worker.output import trainer_output\n"
            "say_warnings()\n"
            f"with trainer_output(pathlib.Path({str(tmp_path)!r})):\n"
            "    print('TRAINER')\n"
            "    logging.getLogger('hpstudy.storage').warning('storage unreachable; retrying')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "warning: storage unreachable; retrying"
    log = (tmp_path / "train.log").read_text()
    assert "TRAINER" in log
    assert "retrying" not in log
