"""hpstudy installed from its wheel, not from the checkout: one namespace, runtime data outside the package.

The wheel is built from a copy of the checkout (an in-tree build would leave ``build/`` and an egg-info
behind) and installed with ``pip install --no-deps --target`` (the test venv already holds every
dependency). Studies then run from an empty directory outside the checkout with only that target and the
venv's site-packages importable: the checkout's editable install must not be what runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
#: What a copy of the checkout needs to build: the sources, not the runtime data or build outputs.
IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "*.db", "*.db-*", "*.lock", "artifacts", "datasets", "pg",
                                 "yolo_config", "runs", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache",
                                 ".pytest_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(root / "dist"), str(source)], check=True, capture_output=True, timeout=240)
    (built,) = (root / "dist").glob("hpstudy-*.whl")
    return built


@pytest.fixture(scope="module")
def target(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=240)
    return site


def _packages() -> list[str]:
    return list(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_in_the_packages_list() -> None:
    listed = set(_packages())
    for top in ("studies", "objectives", "storage"):
        for init in (REPO / top).rglob("__init__.py"):
            dotted = ".".join(("hpstudy", *init.parent.relative_to(REPO).parts))
            assert dotted in listed, f"{init.parent} has an __init__.py but {dotted} is not in pyproject's packages"
    assert all((REPO.joinpath(*name.split(".")[1:]) / "__init__.py").is_file() for name in listed)


def test_the_wheel_installs_one_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"hpstudy", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    # Nothing of the checkout's non-package folders, nor runtime data.
    for name in names:
        assert not name.startswith(("hpstudy/tests/", "hpstudy/scripts/", "hpstudy/storage/artifacts")), name
        assert not name.endswith((".db", ".lock", ".log")), name
    assert "hpstudy/objectives/lightning/objective.py" in names
    assert "hpstudy/studies/examples/my_lightning.py" in names  # the examples ship with the package
    entry_points = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/entry_points.txt")
    assert b"hpstudy = hpstudy.studies.cli:main" in entry_points


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HPSTUDY_HOME")}
    env.update({"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                "YOLO_OFFLINE": "1", **extra})
    return env


def _files(directory: Path) -> dict[str, float]:
    return {str(p.relative_to(directory)): p.stat().st_mtime for p in directory.rglob("*")}


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory outside the checkout."""
    work = tmp_path / "work"
    work.mkdir()
    assert REPO not in work.parents
    return work


def test_installed_package_imports_from_the_target_only(target: Path, elsewhere: Path) -> None:
    code = ("import importlib.util, hpstudy, hpstudy.objectives; print(hpstudy.__file__); "
            "print([m for m in ('studies', 'storage', 'objectives') if importlib.util.find_spec(m)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=elsewhere,
                         env=_env(target), timeout=60, check=True).stdout.splitlines()
    assert Path(out[0]).is_relative_to(target), out
    assert out[1] == "[]", "a top-level studies/storage/objectives package is importable"


#: Objective, space and extra spec keys of each kind of study run from the installed package.
KINDS: dict[str, tuple[dict[str, object], dict[str, object], dict[str, object]]] = {
    "formula": ({"type": "formula", "steps": 2}, {"x": {"type": "float", "low": 0.0, "high": 1.0}}, {}),
    "cnn": ({"type": "cnn", "epochs": 1, "max_train_samples": 64, "image_size": 8, "width": 4, "depth": 1},
            {"lr": {"type": "float", "low": 0.01, "high": 0.1, "log": True}}, {}),
    # The user's own function, in a module beside the spec in the user's directory.
    "function": ({"type": "function", "target": "my_train:train", "checkpoint": "last.pt",
                  "defaults": {"lr": 0.1, "momentum": 0.9, "hidden": 8, "batch_size": 64, "epochs": 1}},
                 {"lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True}},
                 {"metric": "accuracy", "direction": "maximize"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_hpstudy_run_from_an_empty_directory(kind: str, target: Path, elsewhere: Path) -> None:
    objective, space, extra = KINDS[kind]
    spec = {"name": f"installed-{kind}", "objective": objective, "space": space, "n_trials": 2,
            "sampler": {"name": "random", "seed": 0}, "device": "cpu", **extra}
    if kind == "function":
        shutil.copy(REPO / "studies" / "examples" / "my_train.py", elsewhere / "my_train.py")
    (elsewhere / "spec.yaml").write_text(yaml.safe_dump(spec))
    before = _files(target)
    command = [str(target / "bin" / "hpstudy")] if kind == "formula" else [sys.executable, "-m", "hpstudy"]
    proc = subprocess.run([*command, "run", "spec.yaml", "--quiet"], capture_output=True, text=True, cwd=elsewhere,
                          env=_env(target), timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    database = elsewhere / "storage" / "hpstudy.db"
    assert database.is_file()
    study = optuna.load_study(study_name=f"installed-{kind}", storage=f"sqlite:///{database}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for trial in study.trials:
        assert Path(trial.user_attrs["run_dir"]).is_relative_to(elsewhere / "storage" / "artifacts")
    assert _files(target) == before, "the run wrote into the installed package"


@pytest.mark.slow
def test_hpstudy_home_holds_the_runtime_data(target: Path, elsewhere: Path, tmp_path: Path) -> None:
    spec = {"name": "installed-home", "objective": {"type": "formula"}, "n_trials": 1,
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "device": "cpu"}
    (elsewhere / "spec.yaml").write_text(yaml.safe_dump(spec))
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-m", "hpstudy", "run", "spec.yaml", "--quiet"], capture_output=True,
                          text=True, cwd=elsewhere, env=_env(target, HPSTUDY_HOME=str(home)), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (home / "storage" / "hpstudy.db").is_file()
    assert not (elsewhere / "storage").exists()
