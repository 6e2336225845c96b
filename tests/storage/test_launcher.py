"""``scripts/launch_workers.py`` and secrets: the password in a URL shows up nowhere."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpstudy.storage import open_storage
from hpstudy.storage.pgserver import PostgresServer
from support.workers import FAST_HEARTBEAT, PYTHON, REPO, wait_for, write_spec

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def launcher_log(tmp_path: Path) -> Path:
    return tmp_path / "launcher.log"


def _launch(spec: Path, storage: str, log: Path, *extra: str,
            env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([PYTHON, str(REPO / "scripts" / "launch_workers.py"), str(spec),
                                 "--gpus", "0,1", "--storage", storage, "--device", "cpu", "--quiet", *extra],
                                stdout=out, stderr=subprocess.STDOUT, cwd=spec.parent,
                                env={**os.environ, **FAST_HEARTBEAT, **(env or {})})


def _worker_pids(log: Path) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"started worker (\S+) \(pid (\d+)\)", log.read_text())}


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Kill the launcher and its workers (they run in sessions of their own)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    for pid in _worker_pids(log).values() if log.exists() else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_launcher_hides_the_password_restarts_a_dead_worker_and_completes(
        postgres: PostgresServer, tmp_path: Path, launcher_log: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    password = postgres.password
    monkeypatch.delenv("HPSTUDY_DB_PASSWORD", raising=False)
    url = postgres.url().replace("hpstudy@", f"hpstudy:{password}@")
    name = f"launch-{tmp_path.name}"
    spec = write_spec(tmp_path, name, n_trials=6, steps=4, sleep=0.2)
    proc = _launch(spec, url, launcher_log)
    try:
        pids = wait_for(lambda: len(_worker_pids(launcher_log)) == 2 and _worker_pids(launcher_log),
                        timeout=60, what="two workers")
        for pid in pids.values():  # process titles carry no password
            assert password not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        wait_for(lambda: "[gpu0] " in launcher_log.read_text() or proc.poll() is not None, timeout=60,
                 what="worker output")
        os.kill(pids["gpu0"], signal.SIGKILL)
        wait_for(lambda: "restarting" in launcher_log.read_text() or proc.poll() is not None, timeout=30,
                 what="the restart")
        assert proc.wait(timeout=120) == 0, launcher_log.read_text()[-3000:]
    finally:
        _stop(proc, launcher_log)
    output = launcher_log.read_text()
    assert "[gpu1] " in output
    assert "worker gpu0 exited with -9; restarting" in output
    assert password not in output

    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=0, writer=False))
    trials = study.get_trials(deepcopy=False)
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 6
    stored = json.dumps([study.user_attrs, study._storage.get_study_system_attrs(study._study_id),
                         [(t.user_attrs, t.system_attrs) for t in trials]], default=str)
    assert password not in stored
    assert all(password not in p.read_text(errors="replace")
               for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".json", ".yaml"))


def test_wrong_password_error_does_not_show_it(postgres: PostgresServer) -> None:
    bad = postgres.url().replace("hpstudy@", "hpstudy:not-the-password-4711@")
    with pytest.raises(Exception) as err:  # noqa: PT011 - whatever the driver raises
        open_storage(bad, outage_timeout=1)
    assert "not-the-password-4711" not in f"{err.value!r} {err.value}"


def test_ctrl_c_stops_every_worker(tmp_path: Path, launcher_log: Path) -> None:
    spec = write_spec(tmp_path, "ctrlc", n_trials=100, steps=50, sleep=0.2)
    proc = _launch(spec, f"journal:///{tmp_path / 'study.log'}", launcher_log)
    try:
        pids = wait_for(lambda: len(_worker_pids(launcher_log)) == 2 and _worker_pids(launcher_log),
                        timeout=60, what="two workers")
        wait_for(lambda: launcher_log.read_text().count("study ctrlc") >= 3, timeout=60,
                 what="workers to open the study")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, launcher_log.read_text()[-3000:]
    finally:
        _stop(proc, launcher_log)
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert "SIGINT: stopping 2 workers" in launcher_log.read_text()
