"""``scripts/launch_workers.py``: one ``run_study.py`` worker per GPU slot on this machine.

Each worker sees one GPU (``CUDA_VISIBLE_DEVICES``), its output lines are prefixed with its slot, a
worker that dies before the study is complete is started again (a bounded number of times), and Ctrl-C
is passed on once to every worker, which marks its running trial FAIL and stops. The study is created
once here, before any worker starts, so workers never race to create it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

import optuna

from hpstudy.storage import PASSWORD_ENV, mask_url, open_storage, resolve_url, split_password
from hpstudy.studies.errors import exit_2_on_user_error
from hpstudy.studies.spec.model import StudySpec, load_spec
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker.loop import FAILURE_BUDGET_EXIT, count_finished

#: How a worker is started: the installed package, never a path into a checkout.
RUN_STUDY = ("-m", "hpstudy", "run")
POLL_SECONDS = 1.0
STOP_SECONDS = 60.0


@dataclass
class Slot:
    """One worker place: a GPU (or ``cpu``) and its index on that GPU."""

    gpu: str
    index: int
    per_gpu: int
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    finished: bool = False

    @property
    def label(self) -> str:
        name = "cpu" if self.gpu == "cpu" else f"gpu{self.gpu}"
        return f"{name}.{self.index}" if self.per_gpu > 1 else name


@dataclass
class Launcher:
    """Starts, watches and stops the workers of one study.

    Args:
        spec_path: The study spec.
        storage: Storage URL given on the command line (None: the spec's).
        gpus: GPU ids, or ``["cpu"]``.
        per_gpu: Workers per GPU.
        worker_args: Further ``run_study.py`` flags, passed to every worker.
        max_restarts: How often one slot's worker is started again after dying.
    """

    spec_path: str
    storage: str | None
    gpus: list[str]
    per_gpu: int = 1
    worker_args: list[str] = field(default_factory=list)
    max_restarts: int = 3
    out: IO[str] = sys.stdout
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _signals: int = 0

    def __post_init__(self) -> None:
        self.slots = [Slot(g, i, self.per_gpu) for g in self.gpus for i in range(self.per_gpu)]
        self.env = dict(os.environ)
        self.url: str | None = None
        if self.storage is not None:
            # Workers get the URL without its password (process titles show arguments); the password
            # travels in their environment instead.
            self.url, password = split_password(self.storage)
            if password:
                self.env[PASSWORD_ENV] = password

    def prepare(self) -> tuple[StudySpec, optuna.Study]:
        """Validate the spec and create (or check) the study once."""
        overrides = [*self._spec_overrides()]
        if self.storage is not None:
            overrides.append(f"storage='{self.storage}'")
        spec = load_spec(self.spec_path, overrides)
        storage = open_storage(resolve_url(spec.storage), heartbeat_interval=0, writer=False)
        study = open_study(spec, storage, source=self.spec_path,
                           allow_space_change="--allow-space-change" in self.worker_args,
                           allow_objective_change="--allow-objective-change" in self.worker_args)
        return spec, study

    def run(self) -> int:
        """Run until the study is complete, every worker gave up, or a signal arrives; the exit status."""
        spec, study = self.prepare()
        self.say(f"study {spec.name} on {mask_url(resolve_url(spec.storage))}: {count_finished(study)}/"
                 f"{spec.n_trials} finished; {len(self.slots)} workers on {', '.join(self.gpus)}")
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in self.slots:
                self._start(slot)
            while not self._stop.is_set() and not all(s.finished for s in self.slots):
                self._stop.wait(POLL_SECONDS)
                self._watch(spec, study)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            self._shutdown()
        done = count_finished(study)
        self.say(f"study {spec.name}: {done}/{spec.n_trials} finished")
        if self._signals:
            return 130
        return 0 if done >= spec.n_trials else 1

    # -- workers ------------------------------------------------------------------------------------

    def _command(self, slot: Slot) -> list[str]:
        command = [sys.executable, *RUN_STUDY, self.spec_path, *self.worker_args]
        if self.url is not None:
            command += ["--storage", self.url]
        if "--device" not in self.worker_args:
            command += ["--device", "cpu" if slot.gpu == "cpu" else "cuda"]
        return command

    def _start(self, slot: Slot) -> None:
        env = {**self.env, "PYTHONUNBUFFERED": "1", "HPSTUDY_WORKER": slot.label}
        if slot.gpu != "cpu":
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        # A session of its own: the terminal's Ctrl-C reaches the launcher only, which passes it on once.
        slot.proc = subprocess.Popen(self._command(slot), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        threading.Thread(target=self._pump, args=(slot.label, slot.proc), daemon=True).start()
        self.say(f"started worker {slot.label} (pid {slot.proc.pid})")

    def _pump(self, label: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.say(raw.decode(errors="replace").rstrip("\n"), prefix=label)

    def _watch(self, spec: StudySpec, study: optuna.Study) -> None:
        complete = None
        for slot in self.slots:
            if slot.finished or slot.proc is None or slot.proc.poll() is None:
                continue
            code = slot.proc.returncode
            if complete is None:
                complete = count_finished(study) >= spec.n_trials
            if code == 0 or complete or self._stop.is_set():
                slot.finished = True
            elif code == FAILURE_BUDGET_EXIT:  # its trials kept failing: a restart would fail them again
                self.say(f"worker {slot.label} stopped after too many failed trials; not restarting it")
                slot.finished = True
            elif slot.restarts >= self.max_restarts:
                self.say(f"worker {slot.label} exited with {code} {slot.restarts + 1} times; giving up on it")
                slot.finished = True
            else:
                slot.restarts += 1
                self.say(f"worker {slot.label} exited with {code}; restarting "
                         f"({slot.restarts}/{self.max_restarts})")
                self._start(slot)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stop.set()
        running = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        if self._signals == 1:
            self.say(f"{signal.Signals(signum).name}: stopping {len(running)} workers (again to kill them)")
            for proc in running:  # the same signal: SIGTERM (preemption) requeues their trials, Ctrl-C not
                proc.send_signal(signum)
        else:
            for proc in running:
                proc.kill()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + STOP_SECONDS
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"worker {slot.label} did not stop in {STOP_SECONDS:.0f} s; killing it")
                slot.proc.kill()
                slot.proc.wait()

    def _spec_overrides(self) -> list[str]:
        """The spec overrides among the worker flags (``--set``, ``--n-trials``...), as workers see them."""
        from hpstudy.studies.cli.run import build_parser, flag_overrides

        args, _ = build_parser().parse_known_args([self.spec_path, *self.worker_args])
        args.storage = None
        return flag_overrides(args)

    def say(self, line: str, *, prefix: str = "launcher") -> None:
        """One output line, prefixed with where it comes from."""
        with self._lock:
            self.out.write(f"[{prefix}] {line}\n")
            self.out.flush()


def parse_gpus(text: str) -> list[str]:
    """``0,1,3`` -> ["0", "1", "3"]; ``cpu`` -> ["cpu"].

    Raises:
        ValueError: Something other than GPU ids or ``cpu``.
    """
    items = [g.strip() for g in text.split(",") if g.strip()]
    if items == ["cpu"] or (items and all(g.isdigit() for g in items)):
        return items
    raise ValueError(f"--gpus takes GPU ids like 0,1,2,3 or 'cpu', got {text!r}")


def parse_per_gpu(text: str, max_per_gpu: int) -> tuple[int, bool]:
    """``--per-gpu``: a count, or ``auto`` (``max_per_gpu`` workers sharing each GPU by admission).

    Returns:
        Workers per GPU, and whether they share it by admission.

    Raises:
        ValueError: Neither a count >= 1 nor ``auto``.
    """
    if text == "auto":
        if max_per_gpu < 1:
            raise ValueError(f"--max-per-gpu must be at least 1, got {max_per_gpu}")
        return max_per_gpu, True
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"--per-gpu takes a count of at least 1 or 'auto', got {text!r}")
    return int(text), False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launch_workers.py",
        description="Start one run_study.py worker per GPU slot, restart those that die, stop when the "
        "study is complete. Unknown flags are passed to every worker.")
    parser.add_argument("spec", help="study spec (YAML)")
    parser.add_argument("--gpus", default="cpu", help="GPU ids, e.g. 0,1,2,3, or 'cpu' (default)")
    parser.add_argument("--per-gpu", default="1",
                        help="workers per GPU (default 1), or 'auto': --max-per-gpu workers per GPU that "
                        "admit a trial only when its predicted peak fits the GPU's unreserved memory "
                        "(needs memory: in the spec)")
    parser.add_argument("--max-per-gpu", type=int, default=4, help="workers per GPU with --per-gpu auto")
    parser.add_argument("--storage", help="storage URL for all workers (password: use HPSTUDY_DB_PASSWORD)")
    parser.add_argument("--max-restarts", type=int, default=3, help="restarts per slot (default 3)")
    return parser


@exit_2_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args, worker_args = build_parser().parse_known_args(argv)
    try:
        gpus = parse_gpus(args.gpus)
        per_gpu, share = parse_per_gpu(args.per_gpu, args.max_per_gpu)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if share and "--share-gpu" not in worker_args:
        worker_args = [*worker_args, "--share-gpu"]
    launcher = Launcher(args.spec, args.storage, gpus, per_gpu=per_gpu, worker_args=worker_args,
                        max_restarts=args.max_restarts)
    return launcher.run()
