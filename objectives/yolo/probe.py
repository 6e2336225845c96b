"""The YOLO objective's memory profiling step: an Ultralytics ``DetectionModel`` built from its yaml, the
real detection loss (``model.loss`` -> ``v8DetectionLoss``) and an SGD step, at imgsz x batch with synthetic
boxes, under fp16 autocast on a GPU like the trainer (``amp=True``). Heavy imports happen when it runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from hpstudy.objectives.base import ObjectiveSettings


@dataclass(frozen=True)
class YoloStep:
    """A picklable profiling step.

    Attributes:
        model: Model yaml (``yolov8n.yaml``, ``yolo11n.yaml``; random init, nothing downloaded).
        nc: Number of classes.
        boxes: Synthetic objects per image (10 -> 50 objects moves memory by 1-3%).
        amp: fp16 autocast on CUDA, as the trainer's default.
        steps: Training steps (the first includes cuDNN's algorithm search).
        imgsz_axis: Name of the image-size axis in a point.
        batch_axis: Name of the batch axis in a point.
    """

    model: str = "yolov8n.yaml"
    nc: int = 80
    boxes: int = 3
    amp: bool = True
    steps: int = 2
    imgsz_axis: str = "imgsz"
    batch_axis: str = "batch"
    preload: tuple[str, ...] = ("ultralytics.nn.tasks", "ultralytics.utils.loss", "ultralytics.cfg")

    def __call__(self, point: Mapping[str, float], device: str) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")
        import torch
        from ultralytics.cfg import get_cfg
        from ultralytics.nn.tasks import DetectionModel

        imgsz, batch = int(point[self.imgsz_axis]), int(point[self.batch_axis])
        model = DetectionModel(self.model, nc=self.nc, verbose=False).to(device)
        model.args = get_cfg()  # type: ignore[assignment]  # the loss reads its box/cls/dfl gains
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        cuda = device.startswith("cuda")
        targets = self._targets(batch, device)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp and cuda)
        for _ in range(self.steps):
            optimizer.zero_grad(set_to_none=True)
            images = torch.rand(batch, 3, imgsz, imgsz, device=device)
            with torch.autocast("cuda" if cuda else "cpu", enabled=self.amp and cuda):
                loss, _ = model.loss({"img": images, **targets})
            scaler.scale(loss.sum()).backward()
            scaler.step(optimizer)
            scaler.update()
        if cuda:
            torch.cuda.synchronize(device)

    def _targets(self, batch: int, device: str) -> dict[str, object]:
        import torch

        n = batch * self.boxes
        generator = torch.Generator().manual_seed(0)
        xy = torch.rand(n, 2, generator=generator) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=generator) * 0.2 + 0.05
        return {"batch_idx": torch.arange(batch).repeat_interleave(self.boxes).float().to(device),
                "cls": torch.randint(0, self.nc, (n, 1), generator=generator).float().to(device),
                "bboxes": torch.cat([xy, wh], 1).to(device)}


def make_step(settings: ObjectiveSettings) -> YoloStep:
    """The profiling step of a YOLO study's settings (model yaml and, where set, the class count)."""
    values = settings.model_dump()
    model = str(values.get("model", "yolov8n.yaml"))
    if model.endswith(".pt"):
        model = model[:-3] + ".yaml"  # same architecture, no download: memory does not depend on weights
    nc = int(values.get("nc") or 80)
    return YoloStep(model=model, nc=nc, amp=bool(values.get("amp", True)))
