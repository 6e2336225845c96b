"""Importing the packages (and the runner) loads no training library: they load when a trial needs them."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules", [
    "hpstudy, hpstudy.studies, hpstudy.objectives, hpstudy.storage",
    "hpstudy.studies.cli, hpstudy.studies.cli.run, hpstudy.studies.worker, hpstudy.studies.study, "
    "hpstudy.studies.inspect.export, hpstudy.studies.inspect",
    "hpstudy.objectives.cnn.config, hpstudy.objectives.yolo.config, hpstudy.objectives.formula",
])
def test_import_loads_no_training_library(modules: str) -> None:
    code = (f"import sys; import {modules}; "
            "heavy = [m for m in ('ultralytics', 'lightning', 'pytorch_lightning') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
