"""``scripts/bench_storage.py``: trials per second and storage time per trial, by backend and workers.

Every worker is a process running the real worker loop (:class:`studies.worker.Worker`) on the formula
objective: 10 steps of 0.02 s, each reported (0.2 s a trial), random sampling so the CPU is left to the
storage. Workers load and wait at a barrier, so start-up is not timed. Scaling is measured against the
ideal ``workers / 0.2`` trials per second; storage time per trial is the time spent inside storage calls
(all threads, heartbeat included) divided by the trials. The worker's ``gc.collect()`` after each trial
(about 0.1 s of CPU, right for real training, unrelated to storage) is skipped in benchmark workers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hpstudy.storage.pgserver import PostgresServer, free_port

OBJECTIVE_S = 0.2
STEPS = 10
WORKERS = (1, 2, 4, 8, 16)
#: benchlib is not installed: worker processes find it on this path.
_SCRIPTS = os.pathsep.join(filter(None, (str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH"))))
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks" / "storage.json"


def _spec(directory: Path, name: str, n_trials: int) -> Path:
    spec = {"name": name, "objective": {"type": "formula", "steps": STEPS, "sleep": OBJECTIVE_S / STEPS},
            "space": {"x": {"type": "float", "low": -2.0, "high": 2.0},
                      "y": {"type": "float", "low": 0.0, "high": 1.0}},
            "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "threshold", "upper": 1.0e9},
            "n_trials": n_trials, "artifacts": str(directory / "artifacts"), "device": "cpu"}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def worker_main(spec_path: str, url: str, go: str, out: str) -> None:
    """One benchmark worker: open everything, wait for ``go`` to exist, run the loop, write timings."""
    from hpstudy.storage import open_storage
    from hpstudy.studies.spec.model import load_spec
    from hpstudy.studies.study.build import open_study
    from hpstudy.studies.worker.loop import Worker, silence_optuna

    silence_optuna()
    gc.collect = lambda generation=2: 0  # see the module docstring: not a storage cost
    spec = load_spec(spec_path)
    storage = open_storage(url)
    spent = _time_calls(storage)
    study = open_study(spec, storage)
    worker = Worker(spec=spec, study=study, device="cpu")
    Path(out + ".ready").touch()
    while not os.path.exists(go):
        time.sleep(0.01)  # barrier poll: start-up is not part of the measurement
    spent[0] = 0.0
    start, cpu = time.time(), time.process_time()
    ran = worker.run().ran
    Path(out).write_text(json.dumps({"start": start, "end": time.time(), "ran": ran, "storage_s": spent[0],
                                     "cpu_s": time.process_time() - cpu}))


def _time_calls(storage: Any) -> list[float]:
    """Add the seconds spent in every public storage method (from any thread) to the returned cell."""
    import threading

    from optuna.storages import BaseStorage

    spent = [0.0]
    lock = threading.Lock()
    names = [n for n in dir(BaseStorage) if not n.startswith("__")]
    names += ["record_heartbeat", "_get_stale_trial_ids"]
    for name in names:
        method = getattr(storage, name, None)
        if not callable(method):
            continue

        def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                with lock:
                    spent[0] += time.perf_counter() - begin

        setattr(storage, name, timed)
    return spent


def run_one(directory: Path, backend: str, url: str, workers: int, per_worker: int,
            env: dict[str, str], server_pids: Sequence[int] = ()) -> dict[str, Any]:
    """Time ``workers`` processes filling one study of ``workers * per_worker`` trials."""
    import optuna
    from optuna.trial import TrialState

    from hpstudy.storage import open_storage
    from hpstudy.studies.spec.model import load_spec
    from hpstudy.studies.study.build import open_study

    name = f"bench-{backend}-{workers}-{int(time.time() * 1000)}"
    spec = _spec(directory, name, workers * per_worker)
    open_study(load_spec(spec), open_storage(url, heartbeat_interval=0, writer=False))
    go = directory / f"{name}.go"
    outs = [directory / f"{name}.{i}.json" for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-m", "benchlib.storage", "--worker", str(spec), url, str(go),
                               str(out)], env={**os.environ, **env, "PYTHONPATH": _SCRIPTS}) for out in outs]
    deadline = time.monotonic() + 120
    while not all(Path(f"{o}.ready").exists() for o in outs) and time.monotonic() < deadline:
        time.sleep(0.05)  # every worker imported and connected: start the clock for all at once
    busy, served = machine_cpu_seconds(), tree_cpu_seconds(server_pids)
    go.touch()
    for proc in procs:
        proc.wait(timeout=300)
    busy, served = machine_cpu_seconds() - busy, tree_cpu_seconds(server_pids) - served
    timings = [json.loads(o.read_text()) for o in outs if o.exists()]
    # Throughput runs from the start signal to the study's last finished trial: the last worker's poll
    # (up to POLL_SECONDS) to notice that the study is full is no trial work.
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=0, writer=False))
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    trials = len(finished)
    last = max(t.datetime_complete.timestamp() for t in finished if t.datetime_complete is not None)
    elapsed = last - min(t["start"] for t in timings)
    per_trial = sum(t["storage_s"] for t in timings) / max(trials, 1)
    rate = trials / elapsed
    cpu_per_trial = busy / max(trials, 1)
    worker_cpu = sum(t["cpu_s"] for t in timings) / max(trials, 1)
    return {"backend": backend, "workers": workers, "trials": trials, "seconds": round(elapsed, 2),
            "trials_per_s": round(rate, 2), "scaling": round(rate / (workers / OBJECTIVE_S), 3),
            "storage_s_per_trial": round(per_trial, 4),
            "storage_share_of_60s_trial": round(per_trial / 60, 5),
            "cpu_s_per_trial": round(cpu_per_trial, 4), "worker_cpu_s_per_trial": round(worker_cpu, 4),
            # The database server (and the gRPC proxy): what one server must sustain a trial, wherever the
            # workers run. None for the serverless backends.
            "server_cpu_s_per_trial": round(served / max(trials, 1), 4) if server_pids else None,
            # The scaling this machine's cores allow at that CPU cost a trial: where it is close to the measured
            # scaling, the machine's CPU (workers and server together), not the storage, is the limit.
            "cpu_bound_scaling": (round(min(1.0, (os.cpu_count() or 1) / cpu_per_trial / (workers / OBJECTIVE_S)), 3)
                                  if cpu_per_trial > 0 else None)}


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU-seconds used by the processes ``pids``, their children alive now and the children they reaped.

    A PostgreSQL backend that exits during the run is reaped by the postmaster, which adds its time to
    its own children's times: the parents' own and children's times plus the live children's own times
    count every backend once.
    """
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            times = parent.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in parent.children():
                with contextlib.suppress(psutil.NoSuchProcess):  # exited while we looked
                    own = child.cpu_times()
                    total += own.user + own.system
    return total


def machine_cpu_seconds() -> float:
    """CPU-seconds the whole machine has been busy, all cores together (idle and I/O wait left out)."""
    import psutil

    times = psutil.cpu_times()  # guest time is already inside user time: not added again
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


@contextmanager
def _proxy(url: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hpstudy.storage.proxy", "--storage", url, "--host", "127.0.0.1",
                             "--port", str(port)], env={**os.environ, **env})
    try:
        from optuna.storages import GrpcStorageProxy

        GrpcStorageProxy(host="127.0.0.1", port=port).wait_server_ready(timeout=60)
        yield f"grpc://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import optuna

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                 platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "optuna": optuna.__version__, "os": platform.platform()}


def run_all(workers: Sequence[int], per_worker: int) -> dict[str, Any]:
    """Every backend at every worker count (SQLite at 1 worker only)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpstudy-bench-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o711)
        rows.append(run_one(directory, "sqlite", f"sqlite:///{directory / 'bench.db'}", 1, per_worker, {}))
        for n in workers:
            journal = f"journal:///{directory / 'bench.log'}"
            rows.append(run_one(directory, "journal", journal, n, per_worker, {}))
        server = PostgresServer(directory / "pg")
        server.start()
        postmaster = [int((server.data / "postmaster.pid").read_text().split()[0])]
        env = {"HPSTUDY_DB_PASSWORD": server.password}
        os.environ.update(env)
        try:
            for n in workers:
                rows.append(run_one(directory, "postgresql", server.url(), n, per_worker, env, postmaster))
            with _proxy(server.url(), env) as (grpc_url, proxy_pid):
                for n in workers:
                    rows.append(run_one(directory, "grpc+postgresql", grpc_url, n, per_worker, env,
                                        [*postmaster, proxy_pid]))
        finally:
            server.destroy()
    return {"objective_s": OBJECTIVE_S, "steps": STEPS, "trials_per_worker": per_worker,
            "machine": machine(), "results": rows}


def print_table(report: dict[str, Any]) -> None:
    """The results as a plain table."""
    print(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores")
    print(f"{'backend':<17}{'workers':>8}{'trials':>8}{'trials/s':>10}{'scaling':>9}{'storage s/trial':>17}"
          f"{'of 60 s trial':>15}{'CPU s/trial':>13}{'worker CPU':>12}{'server CPU':>12}{'CPU allows':>12}")
    for r in report["results"]:
        allows = "-" if r.get("cpu_bound_scaling") is None else f"{r['cpu_bound_scaling']:.0%}"
        server = "-" if r.get("server_cpu_s_per_trial") is None else f"{r['server_cpu_s_per_trial']:.4f}"
        print(f"{r['backend']:<17}{r['workers']:>8}{r['trials']:>8}{r['trials_per_s']:>10.2f}"
              f"{r['scaling']:>9.0%}{r['storage_s_per_trial']:>17.4f}{r['storage_share_of_60s_trial']:>15.3%}"
              f"{r['cpu_s_per_trial']:>13.4f}{r['worker_cpu_s_per_trial']:>12.4f}{server:>12}{allows:>12}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--worker"]:
        worker_main(*args_list[1:5])
        return 0
    parser = argparse.ArgumentParser(prog="bench_storage.py", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)), help="worker counts, e.g. 1,2,4")
    parser.add_argument("--trials-per-worker", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    args = parser.parse_args(args_list)
    report = run_all([int(w) for w in args.workers.split(",")], args.trials_per_worker)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
