"""The backends sit below the spec, the study and the worker: importing them pulls in none of those, nor
a training library, SQLAlchemy or the storage, and no module under objectives/ imports hpstudy.studies
(the errors and lookups both use live in objectives/errors.py and objectives/registry.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

OBJECTIVES = Path(__file__).resolve().parents[2] / "objectives"
FORBIDDEN = ("torch", "lightning", "ultralytics", "sqlalchemy", "hpstudy.studies", "hpstudy.storage")


@pytest.mark.parametrize("modules", [
    "hpstudy.objectives",
    "hpstudy.objectives.cnn.config, hpstudy.objectives.yolo.config, hpstudy.objectives.lightning.config, "
    "hpstudy.objectives.function, hpstudy.objectives.formula",
])
def test_importing_the_backends_imports_nothing_heavy(modules: str) -> None:
    code = (f"import sys; import {modules}; import hpstudy.objectives as o; "
            "[o.get_backend(n).settings_class() for n in o.BUILTIN]; "
            f"print([m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m.startswith({FORBIDDEN!r})])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_backend_module_imports_the_spec_study_or_worker() -> None:
    modules = sorted(OBJECTIVES.rglob("*.py"))
    assert len(modules) > 10
    offenders = [f"{path.relative_to(OBJECTIVES.parent)}: {name}" for path in modules for name in _imports(path)
                 if name == "hpstudy.studies" or name.startswith(("hpstudy.studies.", "studies."))]
    assert offenders == []


def test_the_scan_sees_an_offending_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from hpstudy.studies.spec.model import StudySpec\n")
    assert _imports(bad) == ["hpstudy.studies.spec.model"]
