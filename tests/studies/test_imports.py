"""Importing the packages (and the runner) loads no training library: they load when a trial needs them."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules", [
    "studies, objectives, storage",
    "studies.cli, studies.worker, studies.build, studies.export, studies.inspect",
    "objectives.cnn_config, objectives.yolo_config, objectives.formula",
])
def test_import_loads_no_training_library(modules: str) -> None:
    code = (f"import sys; import {modules}; "
            "heavy = [m for m in ('ultralytics', 'lightning', 'pytorch_lightning') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
