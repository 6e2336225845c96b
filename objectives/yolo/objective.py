"""The YOLO objective: one Ultralytics training per trial, reported and pruned epoch by epoch.

Ultralytics reads its environment when first imported, so this module makes it offline (no settings sync,
no logger integrations, no auto-install, a config directory of our own) before importing it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from hpstudy.storage.urls import runtime_path

INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")


def _offline_environment() -> None:
    """Set before Ultralytics' first import: it decides online-ness and its config dir at import time."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.pop("ULTRALYTICS_API_KEY", None)  # no Platform streaming
    os.environ.setdefault("YOLO_CONFIG_DIR", str(runtime_path("yolo_config")))
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)


_offline_environment()

import optuna  # noqa: E402
import torch  # noqa: E402
import ultralytics.engine.trainer as _trainer_module  # noqa: E402
import ultralytics.utils.checks as _ul_checks  # noqa: E402
from ultralytics import YOLO  # noqa: E402

from hpstudy.objectives.base import TrialContext  # noqa: E402
from hpstudy.objectives.yolo.config import YOLOSettings  # noqa: E402

_CHECK_AMP = _trainer_module.check_amp
_CHECK_FONT = _ul_checks.check_font
#: Metrics the objective measures itself, next to the trainer's.
OWN_METRICS = ("fitness", "images_per_s", "train_time_s")


def offline_guard() -> None:
    """Turn off everything in Ultralytics that talks to the network, even if it was imported before us."""
    import ultralytics.utils as ul_utils
    import ultralytics.utils.checks as ul_checks
    import ultralytics.utils.events as ul_events

    for module in (ul_utils, ul_checks, ul_events):
        module.ONLINE = False  # type: ignore[attr-defined]
    changes: dict[str, Any] = {"sync": False, "api_key": "", **dict.fromkeys(INTEGRATIONS, False)}
    if any(ul_utils.SETTINGS.get(k) != v for k, v in changes.items()):
        ul_utils.SETTINGS.update(changes)


def _offline_check_amp(model: torch.nn.Module) -> bool:
    """Ultralytics' AMP check, minus the yolo26n.pt download: offline it keeps AMP on, as Ultralytics does."""
    from ultralytics.utils import WEIGHTS_DIR

    device = next(model.parameters()).device
    if device.type != "cuda" or (WEIGHTS_DIR / "yolo26n.pt").is_file():
        return bool(_CHECK_AMP(model))
    return True


def _offline_check_font(font: str = "Arial.ttf") -> Path | str | None:
    """Ultralytics' font lookup without its download: None (PIL's default font) when none is installed."""
    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    local = (USER_CONFIG_DIR / Path(font).name).exists()
    if local or any(font in f.fname for f in font_manager.fontManager.ttflist):
        found: Path | str | None = _CHECK_FONT(font)
        return found
    return None


def ultralytics_device(device: str) -> str:
    """``cuda`` -> ``0``, ``cuda:1`` -> ``1``; ``cpu``/``mps`` unchanged."""
    if device == "cuda":
        return "0"
    return device.removeprefix("cuda:")


def build_model(model: str, task: str | None = None) -> YOLO:
    """The Ultralytics model of a spec: a YAML builds random weights, a local ``.pt`` loads them."""
    return YOLO(model, task=task)


def train_step(model: str, *, imgsz: int, batch: int, device: str = "cuda", nc: int = 80,
               objects: int = 10) -> float:
    """Build ``model`` (a YAML) and run one forward/backward/SGD step on random data; return the loss.

    For memory profiling: wrap the call with ``torch.cuda.reset_peak_memory_stats`` and
    ``torch.cuda.max_memory_allocated``. Detection models get ``objects`` random boxes per image,
    classification models random labels.
    """
    offline_guard()
    from ultralytics.cfg import get_cfg

    yolo = build_model(model)
    net: Any = yolo.task_map[str(yolo.task)]["model"](model, nc=nc, verbose=False)
    net.args = get_cfg()
    net = net.to(device).train()
    images = torch.rand(batch, 3, imgsz, imgsz, device=device)
    targets = _random_targets(net, batch, nc, objects, device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss, _ = net.loss({"img": images, **targets})
    loss.sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.sum().detach())


def _random_targets(net: torch.nn.Module, batch: int, nc: int, objects: int, device: str) -> dict[str, Any]:
    if type(net).__name__ == "ClassificationModel":
        return {"cls": torch.randint(0, nc, (batch,), device=device)}
    count = batch * objects
    centres = torch.rand(count, 2, device=device) * 0.6 + 0.2
    sizes = torch.rand(count, 2, device=device) * 0.2 + 0.05
    return {"batch_idx": torch.arange(batch, device=device).repeat_interleave(objects).float(),
            "cls": torch.randint(0, nc, (count, 1), device=device).float(),
            "bboxes": torch.cat([centres, sizes], dim=1)}


@dataclass
class EpochReporter:
    """Ultralytics callbacks: record and report each trained epoch, ask the pruner, stop the trainer.

    ``on_fit_epoch_end`` also fires from the final evaluation of best.pt, with ``trainer.epoch`` one past
    the last trained epoch; only a call that follows ``on_train_epoch_end`` of the same epoch is an epoch.
    """

    ctx: TrialContext
    metric: str
    trainer: Any = None
    epochs: list[dict[str, float]] = field(default_factory=list)
    final: dict[str, float] | None = None
    pruned_at: int | None = None
    last_epoch: int = -1
    save_dir: Path | None = None
    param_count: int | None = None
    images: int = 0
    train_seconds: float = 0.0
    batch: int | None = None
    _last_rate: float = 0.0
    _pending: int | None = None
    _epoch_started: float = 0.0
    _started: float = field(default_factory=time.perf_counter)

    def attach(self, model: YOLO) -> None:
        for event in ("on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_epoch_start",
                      "on_train_batch_end", "on_train_epoch_end", "on_fit_epoch_end"):
            model.add_callback(event, getattr(self, event))

    def on_pretrain_routine_start(self, trainer: Any) -> None:
        self.trainer = trainer
        self.save_dir = Path(trainer.save_dir)  # ctx.run_dir, or an earlier attempt's when resuming

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        known = {*OWN_METRICS, *(trainer.metrics or {})}
        if self.metric not in known:
            raise ValueError(f"metric {self.metric!r} is not measured by this {trainer.args.task} training; "
                             f"it measures: {', '.join(sorted(known))}")

    def on_train_epoch_start(self, trainer: Any) -> None:
        self._epoch_started = time.perf_counter()
        if self.batch is None:
            self.batch = int(trainer.batch_size)

    def on_train_batch_end(self, trainer: Any) -> None:
        # On an OOM in the first epoch Ultralytics halves the batch and carries on: the trial would then
        # train a configuration other than the one sampled. Report it as the out-of-memory error it is.
        if self.batch is not None and int(trainer.batch_size) != self.batch:
            raise MemoryError(f"out of memory at batch={self.batch}: Ultralytics reduced it to "
                              f"{trainer.batch_size}; the sampled configuration does not fit")

    def on_train_epoch_end(self, trainer: Any) -> None:
        self._pending = trainer.epoch
        seconds = time.perf_counter() - self._epoch_started
        self.train_seconds += seconds
        self.images += len(trainer.train_loader.dataset)
        self._last_rate = len(trainer.train_loader.dataset) / max(seconds, 1e-9)

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if self._pending != trainer.epoch:  # the final evaluation of best.pt: no training step
            self.final = _as_floats(trainer.metrics)
            return
        self._pending = None
        values = {**_as_floats(trainer.metrics), "fitness": float(trainer.fitness or 0.0),
                  "images_per_s": self._last_rate, "train_time_s": time.perf_counter() - self._started}
        self.epochs.append(values)
        self.last_epoch = trainer.epoch
        if self.ctx.prune:
            self.ctx.trial.report(values[self.metric], trainer.epoch)
            if self.ctx.trial.should_prune():
                self.pruned_at = trainer.epoch
                trainer.stop = True  # ends after this epoch; Ultralytics then closes its loaders itself

    def result(self, elapsed: float) -> dict[str, float]:
        """Every metric of the trial: best.pt's evaluation, its epoch's fitness, throughput and time."""
        if not self.epochs:
            raise RuntimeError("training ended before its first epoch was evaluated")
        best = max(self.epochs, key=lambda m: m["fitness"])
        metrics = {**best, **(self.final or {})}
        metrics["images_per_s"] = self.images / max(self.train_seconds, 1e-9)
        metrics["train_time_s"] = elapsed
        return metrics


def _as_floats(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (metrics or {}).items()}


class YOLOObjective:
    """Train an Ultralytics model per trial in ``ctx.run_dir``; prune through Optuna after each epoch."""

    def __init__(self, settings: YOLOSettings) -> None:
        self.settings = settings

    def run(self, ctx: TrialContext) -> Mapping[str, float]:
        """Train one trial and return every metric it measured (see ``YOLOSettings.METRICS``).

        Raises:
            optuna.TrialPruned: The pruner stopped the trial after an epoch.
        """
        offline_guard()
        reporter = EpochReporter(ctx, ctx.metrics[0])
        started = time.perf_counter()
        with _cuda_peak(ctx.device) as peak, _released(reporter):
            model = build_model(str(ctx.resume_from or self.settings.model), self.settings.task)
            reporter.attach(model)
            model.train(**self.train_args(ctx))
            del model
        elapsed = time.perf_counter() - started
        self._record(ctx, reporter, elapsed, peak)
        if reporter.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_at}")
        metrics = reporter.result(elapsed)
        self._upload_best(ctx, reporter.save_dir or ctx.run_dir)
        return metrics

    def train_args(self, ctx: TrialContext) -> dict[str, Any]:
        """The trial's Ultralytics arguments: settings, sampled params, device and its own run directory."""
        run_dir = ctx.run_dir.resolve()
        args = self.settings.train_kwargs(ctx.params)
        del args["model"]  # the YOLO object carries it (or the checkpoint to resume)
        device = self.settings.device or ultralytics_device(ctx.device)
        args.update(device=device, project=str(run_dir.parent), name=run_dir.name, exist_ok=True)
        if ctx.resume_from is not None:
            args["resume"] = str(ctx.resume_from)
        return args

    @staticmethod
    def _record(ctx: TrialContext, reporter: EpochReporter, elapsed: float, peak: dict[str, float]) -> None:
        trial = ctx.trial
        epochs = [{k: round(v, 6) for k, v in m.items()} for m in reporter.epochs]
        trial.set_user_attr("epochs_run", reporter.last_epoch + 1)  # counts resumed epochs too
        trial.set_user_attr("epoch_metrics", epochs)
        trial.set_user_attr("train_time_s", round(elapsed, 3))
        if reporter.save_dir is not None and reporter.save_dir != ctx.run_dir.resolve():
            ctx.run_dir = reporter.save_dir  # resumed into the earlier attempt's folder: the worker records it
        for key, value in peak.items():
            trial.set_user_attr(key, round(value, 1))
        if reporter.param_count is not None:
            trial.set_user_attr("param_count", reporter.param_count)

    def _upload_best(self, ctx: TrialContext, run_dir: Path) -> None:
        best = run_dir / "weights" / "best.pt"
        if ctx.artifact_store is None or not best.is_file():
            return
        artifact_id = optuna.artifacts.upload_artifact(artifact_store=ctx.artifact_store, file_path=str(best),
                                                       study_or_trial=ctx.trial)
        ctx.trial.set_user_attr("best_weights_artifact", artifact_id)


@contextlib.contextmanager
def _cuda_peak(device: str) -> Iterator[dict[str, float]]:
    """Peak GPU memory (MiB) of the block, when it runs on CUDA."""
    peak: dict[str, float] = {}
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield peak
    finally:
        if cuda:
            peak["cuda_max_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
            peak["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20


@contextlib.contextmanager
def _released(reporter: EpochReporter) -> Iterator[None]:
    """Offline AMP check during training; afterwards close dataloaders and free memory, whatever happened."""
    with _offline_checks():
        try:
            yield
        finally:
            _close_loaders(reporter.trainer)
            reporter.param_count = _param_count(reporter.trainer)
            reporter.trainer = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


@contextlib.contextmanager
def _offline_checks() -> Iterator[None]:
    """Swap Ultralytics' download-on-demand checks (AMP weights, fonts) for offline ones while training."""
    import ultralytics.data.utils as ul_data
    import ultralytics.utils.plotting as ul_plotting

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(_trainer_module, "check_amp", _offline_check_amp))
        for module in (ul_data, ul_plotting):
            stack.enter_context(mock.patch.object(module, "check_font", _offline_check_font))
        yield


def _close_loaders(trainer: Any) -> None:
    for name in ("train_loader", "test_loader"):
        loader = getattr(trainer, name, None)
        close = getattr(loader, "close", None)
        if callable(close):
            close()
        if trainer is not None and loader is not None:
            setattr(trainer, name, None)


def _param_count(trainer: Any) -> int | None:
    model = getattr(trainer, "model", None)
    if not isinstance(model, torch.nn.Module):
        return None
    return sum(p.numel() for p in model.parameters())
