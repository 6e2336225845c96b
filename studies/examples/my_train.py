"""A user's own training function, tuned by hpstudy without changing it: ``type: function``.

``train(params, ctx)`` trains a small MLP on a synthetic two-class problem (made here, no download),
reports the validation accuracy once per epoch (the pruner may stop it there), checkpoints every epoch to
``ctx.run_dir / "last.pt"`` and, when hpstudy retries a killed trial, continues from ``ctx.resume_from``.
Run it with ``hpstudy run studies/examples/function.yaml``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn


def make_data(n: int = 512, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in ``dim`` dimensions, labelled by which side of a curved boundary they fall."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen)
    y = ((x[:, 0] * x[:, 1] + x[:, 2:].sum(1) * 0.3) > 0).long()
    return x, y


def train(params: dict[str, Any], ctx: Any) -> dict[str, float]:
    """Train with ``params`` (lr, hidden, epochs, ...); return the metrics hpstudy may optimise."""
    torch.set_num_threads(1)
    torch.manual_seed(int(params.get("seed", 0)))
    x, y = make_data()
    x_train, y_train, x_val, y_val = x[:384], y[:384], x[384:], y[384:]
    model = nn.Sequential(nn.Linear(x.shape[1], int(params["hidden"])), nn.ReLU(), nn.Linear(int(params["hidden"]), 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=float(params["lr"]), momentum=float(params["momentum"]))
    first = 0
    if ctx.resume_from is not None:  # a retry of a killed trial: go on where it stopped
        state = torch.load(ctx.resume_from, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first = int(state["epoch"]) + 1
    accuracy = 0.0
    for epoch in range(first, int(params["epochs"])):
        model.train()
        for batch in torch.randperm(len(x_train)).split(int(params["batch_size"])):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_val).argmax(1) == y_val).float().mean())
        _save(ctx.run_dir / "last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                        "epoch": epoch})
        ctx.report(accuracy, epoch)  # raises optuna.TrialPruned when the pruner stops the trial
    return {"accuracy": accuracy, "params": float(sum(p.numel() for p in model.parameters()))}


def _save(path: Any, state: dict[str, Any]) -> None:
    # Written beside and renamed: a trial killed mid-write leaves the previous checkpoint whole.
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
