"""Which checkpoint a retried trial resumes from."""

from __future__ import annotations

from pathlib import Path

import torch

from hpstudy.studies.worker.resume import find_checkpoint

#: Checkpoint names in order of preference, as a backend lists them (here: Lightning, Ultralytics, formula).
NAMES = ("last.ckpt", "weights/last.pt", "last.ckpt.json")


def _torch_checkpoint(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "model": torch.nn.Linear(64, 64).state_dict()}, path)
    return path


def test_whole_checkpoints_are_found_in_order(tmp_path: Path) -> None:
    assert find_checkpoint(tmp_path, NAMES) is None
    yolo = _torch_checkpoint(tmp_path / "weights" / "last.pt")
    assert find_checkpoint(tmp_path, NAMES) == yolo
    lightning = _torch_checkpoint(tmp_path / "last.ckpt")
    assert find_checkpoint(tmp_path, NAMES) == lightning


def test_a_checkpoint_cut_short_by_a_kill_is_not_resumed_from(tmp_path: Path) -> None:
    path = _torch_checkpoint(tmp_path / "weights" / "last.pt")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # what a SIGKILL during Ultralytics' in-place write leaves
    assert find_checkpoint(tmp_path, NAMES) is None
    path.write_bytes(whole[:-10])
    assert find_checkpoint(tmp_path, NAMES) is None
    (tmp_path / "last.ckpt.json").write_text('{"step": ')
    assert find_checkpoint(tmp_path, NAMES) is None
    (tmp_path / "last.ckpt.json").write_text('{"step": 2}')
    assert find_checkpoint(tmp_path, NAMES) == tmp_path / "last.ckpt.json"
