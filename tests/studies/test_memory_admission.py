"""Trials sharing one device by admission (``--per-gpu auto`` / ``--share-gpu``): the ledger between real
processes, the hook with a model profiled by the real CPU probe, the flags, and two real workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from hpstudy.objectives.base import TrialContext
from hpstudy.objectives.cnn.probe import CnnStep
from hpstudy.storage import open_storage
from hpstudy.studies.memory import build_constraint
from hpstudy.studies.memory.admission import OTHERS, RESERVED, WAITED, AdmissionHook, DeviceLedger
from hpstudy.studies.spec.model import validate_spec
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker import launcher

REPO = Path(__file__).resolve().parents[2]
STEP = CnnStep(settings={"width": 8, "depth": 2}, in_channels=1, steps=1)
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hpstudy.studies.memory.admission import DeviceLedger
    ledger = DeviceLedger(Path(sys.argv[1]), 100.0)
    assert ledger.try_reserve("holder", float(sys.argv[2])) is not None
    print("reserved", flush=True)
    if sys.argv[3] == "crash":
        import os
        os._exit(1)  # dies holding it
    sys.stdin.readline()
    ledger.release("holder")
""")


def _holder(path: Path, mib: float, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(mib), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "reserved"
    return proc


def test_ledger_refuses_what_does_not_fit_next_to_another_process(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    holder = _holder(path, 60.0, "hold")
    ledger = DeviceLedger(path, 100.0)
    assert ledger.try_reserve("mine", 50.0) is None
    assert ledger.try_reserve("small", 30.0) == pytest.approx(60.0)
    ledger.release("small")
    holder.communicate("done\n", timeout=30)
    assert holder.returncode == 0
    assert ledger.try_reserve("mine", 50.0) == 0.0
    assert ledger.reserved() == {"mine": 50.0}


def test_a_reservation_of_a_dead_process_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    holder = _holder(path, 90.0, "crash")
    assert holder.wait(timeout=30) == 1
    ledger = DeviceLedger(path, 100.0)
    assert ledger.try_reserve("mine", 50.0) == 0.0
    assert "holder" not in ledger.reserved()


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, Any]:
    """A CNN study whose memory model comes from real profiling steps measured by the CPU probe."""
    spec = validate_spec({
        "name": "admit", "objective": {"type": "cnn", "width": 8, "depth": 2}, "metric": "loss",
        "space": {"image_size": {"type": "int", "low": 16, "high": 64, "step": 16},
                  "batch_size": {"type": "int", "low": 2, "high": 32, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, "n_trials": 4,
        "artifacts": str(tmp_path_factory.mktemp("a")), "device": "cpu",
        "memory": {"budget": "1GiB", "profile_levels": 2, "profile_max_points": 6},
    }, source="test")
    constraint = build_constraint(spec, "cpu", step=STEP)
    study = open_study(spec, optuna.storages.InMemoryStorage())
    constraint.prepare(study)
    return study, constraint


def _ctx(study: optuna.Study, params: dict[str, Any], tmp_path: Path) -> TrialContext:
    trial = study.ask()
    return TrialContext(trial=trial, params=params, metrics=("loss",), prune=False, run_dir=tmp_path, device="cpu")


def test_a_trial_waits_until_the_running_one_releases_its_reservation(
        profiled: tuple[optuna.Study, Any], tmp_path: Path) -> None:
    study, constraint = profiled
    params = {"image_size": 64, "batch_size": 32}
    need = constraint.predict(params) * (1 + constraint.margin)
    assert need > 0
    ledger = DeviceLedger(tmp_path / "cpu.json", 1.5 * need)  # room for one such trial, not two
    first = AdmissionHook(constraint, ledger)
    ctx_a, ctx_b = _ctx(study, params, tmp_path), _ctx(study, params, tmp_path)
    first.before(ctx_a)
    waits: list[dict[str, float]] = []

    def running_trial_ends(seconds: float) -> None:  # instead of waiting: the other trial finishes
        waits.append(ledger.reserved())
        first.after(ctx_a, {"loss": 1.0}, None)

    second = AdmissionHook(constraint, ledger, wait=running_trial_ends)
    second.before(ctx_b)
    assert len(waits) == 1
    assert list(waits[0].values()) == [pytest.approx(need)]  # only the first trial held memory then
    attrs_a, attrs_b = ctx_a.trial.user_attrs, ctx_b.trial.user_attrs
    assert attrs_a[RESERVED] == pytest.approx(need, abs=0.1)
    assert attrs_a[OTHERS] == 0.0
    assert attrs_b[OTHERS] == 0.0
    assert attrs_b[WAITED] >= 0.0
    second.after(ctx_b, None, RuntimeError("boom"))
    assert ledger.reserved() == {}  # released on failure too


def test_small_trials_are_admitted_together(profiled: tuple[optuna.Study, Any], tmp_path: Path) -> None:
    study, constraint = profiled
    params = {"image_size": 16, "batch_size": 2}
    need = constraint.predict(params) * (1 + constraint.margin)
    ledger = DeviceLedger(tmp_path / "cpu.json", 3.5 * need)

    def never(seconds: float) -> None:
        raise AssertionError("a trial that fits was made to wait")

    hooks = [AdmissionHook(constraint, ledger, wait=never) for _ in range(3)]
    contexts = [_ctx(study, params, tmp_path) for _ in hooks]
    for hook, ctx in zip(hooks, contexts, strict=True):
        hook.before(ctx)
    assert [c.trial.user_attrs[OTHERS] for c in contexts] == [pytest.approx(i * need, abs=0.3) for i in range(3)]
    assert sum(ledger.reserved().values()) <= ledger.capacity_mib


def test_per_gpu_auto_starts_sharing_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: list[launcher.Launcher] = []
    monkeypatch.setattr(launcher.Launcher, "run", lambda self: started.append(self) or 0)
    assert launcher.main([str(tmp_path / "s.yaml"), "--gpus", "0,1", "--per-gpu", "auto", "--max-per-gpu", "3"]) == 0
    (run,) = started
    assert len(run.slots) == 6
    assert "--share-gpu" in run._command(run.slots[0])
    assert launcher.parse_per_gpu("2", 4) == (2, False)
    for bad in ("0", "x", "-1"):
        with pytest.raises(ValueError, match="--per-gpu"):
            launcher.parse_per_gpu(bad, 4)


def test_share_gpu_without_a_memory_budget_is_one_clear_error(
        write_spec: Callable[..., Path], formula: Callable[..., dict[str, Any]],
        run_cli: Callable[..., subprocess.CompletedProcess[str]], sqlite_url: str) -> None:
    spec = write_spec(formula())
    proc = run_cli(str(spec), "--storage", sqlite_url, "--share-gpu")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(spec) in lines[0]
    assert "memory" in lines[0]
    assert "--share-gpu" in lines[0]


@pytest.mark.slow
def test_two_workers_sharing_a_device_never_reserve_more_than_its_budget(tmp_path: Path) -> None:
    spec = {
        "name": "shared", "objective": {"type": "cnn", "epochs": 1, "max_train_samples": 64, "depth": 2,
                                        "width": 4},
        "space": {"image_size": {"type": "int", "low": 16, "high": 64, "step": 16},
                  "batch_size": {"type": "int", "low": 2, "high": 32, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, "n_trials": 6,
        "device": "cpu", "artifacts": str(tmp_path / "runs"),
        "memory": {"budget": "300MiB", "profile_levels": 2, "profile_max_points": 6},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    url = f"journal:///{tmp_path / 'journal.log'}"  # several writers: never SQLite
    env = {"HPSTUDY_HOME": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "launch_workers.py"), str(path), "--gpus", "cpu",
                           "--per-gpu", "auto", "--max-per-gpu", "2", "--storage", url, "--quiet"],
                          capture_output=True, text=True, timeout=400, cwd=tmp_path,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name="shared", storage=open_storage(url))
    trained = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trained) >= 6
    for t in trained:
        attrs = t.user_attrs
        assert attrs[OTHERS] + attrs[RESERVED] <= attrs["memory_budget_mib"] + 0.2, attrs
    assert (tmp_path / "storage" / "admission" / "cpu.json").is_file()
