"""``scripts/run_study.py``: parse flags, validate, open the study, run a worker, print the summary."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hpstudy.storage import mask_url, open_storage, resolve_url
from hpstudy.studies.errors import SpecError, exit_2_on_user_error
from hpstudy.studies.inspect.summary import print_summary, trial_line
from hpstudy.studies.memory.wiring import memory_constraint, memory_hooks, memory_sampler
from hpstudy.studies.spec.model import StudySpec, load_spec
from hpstudy.studies.study.build import open_study
from hpstudy.studies.worker import (
    TrialHook,
    Worker,
    WorkerResult,
    artifacts_root,
    count_finished,
    exit_code,
    resolve_device,
    run_root,
    silence_optuna,
)
from hpstudy.studies.worker.output import console_stderr


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_study.py",
        description="Run (or resume) a hyperparameter study until it holds n_trials finished trials. "
        "Many workers may run this against one storage.",
    )
    parser.add_argument("spec", help="study spec (YAML), e.g. studies/cnn_digits.yaml")
    parser.add_argument("--storage", help="storage URL (default: the spec's, sqlite:///storage/hpstudy.db)")
    parser.add_argument("--study-name", help="study name (default: the spec's name)")
    parser.add_argument("--n-trials", type=int, help="study-wide total of finished trials")
    parser.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key; VALUE is YAML (repeatable)")
    parser.add_argument("--allow-space-change", action="store_true",
                        help="resume a study whose stored search space differs from the spec's")
    parser.add_argument("--allow-objective-change", action="store_true",
                        help="resume a study whose stored objective settings differ from the spec's "
                        "(recorded on the study; later trials record the settings they ran with)")
    parser.add_argument("--quiet", action="store_true", help="no line per trial")
    parser.add_argument("--share-gpu", action="store_true",
                        help="share this worker's device with the other workers on it: start a trial only "
                        "when its predicted peak fits what their running trials have not reserved "
                        "(needs memory: in the spec; launch_workers.py --per-gpu auto sets it)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the trainer's own output live (it always goes to <run dir>/train.log)")
    return parser


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """Flags are overrides too, applied after ``--set`` so they win."""
    extra = []
    for flag, key in (("storage", "storage"), ("study_name", "name"), ("n_trials", "n_trials"),
                      ("timeout", "timeout"), ("device", "device")):
        value = getattr(args, flag)
        if value is not None:
            extra.append(f"{key}={value}" if flag != "storage" else f"{key}='{value}'")
    return [*args.overrides, *extra]


@exit_2_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    # Bound to this stdout: while a trial trains, sys.stdout points at its train.log.
    console = Console(file=sys.stdout, highlight=False)
    silence_optuna()
    say_warnings()
    spec = load_spec(args.spec, flag_overrides(args))
    if args.share_gpu and spec.memory is None:
        raise SpecError(args.spec, "memory", "--share-gpu admits trials by their predicted memory: set "
                        "memory: {budget: ...} in the spec")
    url = resolve_url(spec.storage)
    storage = open_storage(url)
    memory = memory_constraint(spec, resolve_device(spec.device))
    study = open_study(spec, storage, source=args.spec, allow_space_change=args.allow_space_change,
                       allow_objective_change=args.allow_objective_change,
                       sampler=memory_sampler(spec, memory))
    if memory is not None:
        memory.prepare(study)  # profiles this device once per study (seconds), then fits the model
    result = _run(spec, study, console, quiet=args.quiet, verbose=args.verbose,
                  hooks=memory_hooks(memory, share_device=args.share_gpu))
    print_summary(console, study, storage_url=url, artifacts=str(run_root(artifacts_root(spec), study)))
    if result.gave_up:
        print(result.gave_up, file=sys.stderr)
    if result.interrupted:
        console.print(f"[yellow]interrupted by {result.interrupted}[/]: the running trial is marked FAIL; "
                      "run the same command again to resume.")
    return exit_code(result)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the console's current ``sys.stderr`` (a caller or a test may have replaced it since), also
    while a trial's output is redirected to its ``train.log``."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return console_stderr()

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def say_warnings() -> None:
    """hpstudy's own warnings (a default replaced, a second writer...) go to stderr as plain lines."""
    logger = logging.getLogger("hpstudy")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


def _run(spec: StudySpec, study: optuna.Study, console: Console, *, quiet: bool, verbose: bool = False,
         hooks: list[TrialHook] | None = None) -> WorkerResult:
    device = resolve_device(spec.device)
    done = count_finished(study)
    console.print(f"study [bold]{spec.name}[/] on {mask_url(resolve_url(spec.storage))}: "
                  f"{done}/{spec.n_trials} finished trials, device {device}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("trials", total=spec.n_trials, completed=done)

        def on_end(trial: optuna.trial.FrozenTrial) -> None:
            finished = count_finished(study)
            progress.update(task, completed=min(finished, spec.n_trials))
            if not quiet:
                progress.console.print(trial_line(trial), markup=False, soft_wrap=True)

        worker = Worker(spec=spec, study=study, device=device, on_trial_end=on_end, hooks=hooks or [],
                        verbose=verbose)
        return worker.run()
