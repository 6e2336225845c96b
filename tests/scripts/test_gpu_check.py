"""``scripts/gpu_check.sh``: the prepared GPU check, proven by its dry run on the CPU before any GPU time is
spent on it; and the pieces it is built from (caps, the study summary, packing figures)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
import psutil
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from benchlib import gpu_check
from hpstudy.studies.memory import store

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
#: What the device tool brings back from $OUT: at most 8 files, named in letters, digits, '.', '_', '-'.
MAX_FILES = 8
NAME = re.compile(r"^[A-Za-z0-9._-]+$")
HEADLINE_TYPES: dict[str, type | tuple[type, ...]] = {
    "device": str, "oom_trials": int, "infeasible_trained": int, "memory_median_rel_error": float,
    "memory_max_under_prediction": float, "trials": int, "packing_speedup": dict, "date": str,
    "machine": dict, "versions": dict, "parts": dict,
}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("gpu_check")
    out = tmp / "out"
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp)}
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--device", "cpu", "--dry-run", "--work",
                           str(tmp / "work")], capture_output=True, text=True, env=env, cwd=tmp, timeout=540)
    return proc, out


@pytest.mark.slow
def test_dry_run_writes_check_json_with_every_headline_figure(
        dry_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = dry_run
    log = (out / "check.log").read_text() if (out / "check.log").is_file() else ""
    assert proc.returncode == 0, proc.stdout + proc.stderr + log[-4000:]
    check = json.loads((out / "check.json").read_text())
    for key, kind in HEADLINE_TYPES.items():
        assert isinstance(check[key], kind), (key, check[key])
    assert check["device"] == "cpu"
    assert check["dry_run"] is True
    assert all(part["status"] == "ok" for part in check["parts"].values()), check["parts"]
    assert set(check["parts"]) == {"data", "memory", "study", "packing"}
    assert 1 <= check["trials"] <= 2
    assert check["oom_trials"] == 0
    assert check["infeasible_trained"] == 0
    assert 0 <= check["memory_median_rel_error"] < 1
    assert 0 <= check["memory_max_under_prediction"] < 1
    assert set(check["packing_speedup"]) == {"2", "4"}
    assert all(isinstance(v, float) and v > 0 for v in check["packing_speedup"].values())
    assert datetime.datetime.fromisoformat(check["date"]).tzinfo is not None
    assert check["machine"]["cpus"] >= 1
    assert all(isinstance(check["versions"][name], str) for name in ("torch", "optuna", "ultralytics"))


@pytest.mark.slow
def test_dry_run_parts_measured_what_they_claim(dry_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = dry_run
    memory = json.loads((out / "memory.json").read_text())
    case = next(iter(memory["cases"].values()))
    assert case["profile_points"] >= 2
    assert case["held_out"], case
    assert all(r["measured_mib"] and r["measured_mib"] > 0 for r in case["held_out"])
    study = json.loads((out / "study.json").read_text())
    assert study["trained"] >= 1
    assert all(r["predicted_mib"] and r["budget_mib"] for r in study["rows"])
    assert study["startup_s_median"] > 0
    packing = json.loads((out / "packing.json").read_text())
    for count in ("1", "2", "4"):
        rnd = packing["rounds"][count]
        assert rnd["trained"] == int(count), rnd
        assert rnd["peak_mib_together"] > 0
        assert all(t["budget_mib"] == pytest.approx(2048 / int(count), abs=0.1) for t in rnd["trials"])


@pytest.mark.slow
def test_dry_run_output_fits_what_the_device_tool_brings_back(
        dry_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = dry_run
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) <= MAX_FILES, files
    assert all(NAME.match(p.name) and p.parent == out for p in files), files
    for name in ("memory.png", "packing.png", "memory_map.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_caps_fit_the_device_command_limit() -> None:
    for dry in (False, True):
        settings = gpu_check.settings_for("cuda", dry_run=dry)
        assert set(settings.caps) == set(gpu_check.PARTS)
        assert sum(settings.caps.values()) <= gpu_check.TOTAL_CAP_S <= 600 - 60  # room to install wheels


def test_a_part_over_its_cap_is_killed_with_its_children(tmp_path: Path) -> None:
    settings = gpu_check.settings_for("cpu", dry_run=True)
    settings = gpu_check.CheckSettings(**{**settings.__dict__, "caps": {**settings.caps, "memory": 2.0}})
    started = time.perf_counter()
    result = gpu_check.run_part("memory", settings, tmp_path / "out", tmp_path / "work", tmp_path / "log")
    assert result.status == "timeout"
    assert time.perf_counter() - started < 20
    assert result.pid is not None
    group = _processes(p for p in psutil.pids() if _sid(p) == result.pid)
    _, alive = psutil.wait_procs(group, timeout=10)  # killed ones may linger a moment as zombies
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append(psutil.Process(pid))
    return out


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _trial(state: TrialState, number: int, *, predicted: float, budget: float = 100.0, trained: bool = True,
           value: float = 0.5, **attrs: Any) -> optuna.trial.FrozenTrial:
    user_attrs = {store.PREDICTED: predicted, store.BUDGET: budget, store.DEVICE: "cuda:X", **attrs}
    return create_trial(
        state=state, value=value if state == TrialState.COMPLETE else None,
        params={"imgsz": 320 + 32 * number, "batch": 8},
        distributions={"imgsz": IntDistribution(320, 640, step=32), "batch": IntDistribution(8, 256, log=True)},
        user_attrs=user_attrs, intermediate_values={0: 0.1} if trained else None)


def test_study_summary_counts_oom_refused_infeasible_and_pruned_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name=gpu_check.STUDY_NAME, storage=url, direction="maximize")
    epochs = [{"train_time_s": 14.0}, {"train_time_s": 18.0}, {"train_time_s": 22.0}]
    study.add_trials([
        _trial(TrialState.COMPLETE, 0, predicted=60, **{store.MEASURED: 50.0}, epoch_metrics=epochs,
               wall_time_s=23.0),
        _trial(TrialState.PRUNED, 1, predicted=90, trained=False, **{store.OOM: 100.0}),
        _trial(TrialState.PRUNED, 2, predicted=130, trained=False,
               fail_reason="MemoryInfeasible: predicted peak 130 MiB (+1% margin) exceeds the budget of 100 MiB"),
        _trial(TrialState.COMPLETE, 3, predicted=99.5, value=0.4, **{store.MEASURED: 97.0}),  # 99.5 + margin > 100
        _trial(TrialState.PRUNED, 4, predicted=40, **{store.MEASURED: 35.0}),  # the pruner stopped it
        _trial(TrialState.FAIL, 5, predicted=40, fail_reason="interrupted by SIGTERM"),  # killed by the cap
        _trial(TrialState.PRUNED, 6, predicted=80, **{store.OOM: 100.0}),  # out of memory after an epoch
    ])
    summary = gpu_check.summarize_study(url)
    assert summary["trials"] == 6
    assert summary["oom_trials"] == 2
    assert summary["refused_by_model"] == 1
    assert summary["infeasible_trained"] == 1
    assert summary["trained"] == 4
    assert summary["pruned_fraction"] == pytest.approx(1 / 6, abs=1e-3)
    assert summary["best_budget_share"]["budget_share"] == pytest.approx(0.5)
    assert summary["startup_s"] == [pytest.approx(23.0 - 3 * 4.0)]


def test_packing_speedup_is_trials_per_hour_over_one_alone() -> None:
    rounds = {"1": {"trials_per_hour": 100.0}, "2": {"trials_per_hour": 150.0},
              "4": {"trials_per_hour": 240.0}}
    assert gpu_check.packing_speedup(rounds) == {"packing_speedup": {"2": 1.5, "4": 2.4}}
    assert gpu_check.packing_speedup({"2": {"trials_per_hour": 1.0}}) == {"packing_speedup": {"2": None}}


def test_budget_is_split_evenly_between_packed_trials() -> None:
    assert gpu_check._split_budget(0.9, 4) == pytest.approx(0.225)
    assert gpu_check._split_budget("2GiB", 4) == "512.0MiB"
