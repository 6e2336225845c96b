"""The dashboard served by ``scripts/dashboard.py``: real server, real browser, its JSON API."""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.artifacts import upload_artifact

from hpstudy.objectives.base import TrialContext
from hpstudy.studies.inspect import create_server
from hpstudy.studies.inspect.dashboard import main

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "tests" / "artifacts" / "dashboard_importance.png"

Serve = Callable[[str, Path], str]


def _need_browser() -> None:
    """Skip without Chromium/Playwright, except in CI, where a missing browser is a failure."""
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        reason = "missing " + ", ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " and CI=true: the browser test must run")
        pytest.skip(reason)


@pytest.mark.slow
def test_browser_shows_every_searched_parameter_in_the_importance_plot(
        study_factory: Callable[..., optuna.Study], serve_dashboard: Serve, tmp_path: Path) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    study = study_factory(n_trials=12)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) >= 10
    names = list(study.trials[0].params)
    base = serve_dashboard(f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "store")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/dashboard/studies/{study._study_id}")
            plot = page.locator("#graph-hyperparameter-importances")
            # Plotly draws one y tick per parameter once the importance request has answered.
            page.wait_for_function("n => document.querySelectorAll("
                                   "'#graph-hyperparameter-importances .ytick text').length >= n",
                                   arg=len(names), timeout=60_000)
            ticks = plot.locator(".ytick text").all_text_contents()
            heading = page.get_by_text("Hyperparameter Importance", exact=True).first.is_visible()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            card = plot.locator("xpath=ancestor::div[contains(@class, 'MuiCard-root')][1]")
            (card if card.count() else plot).screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert heading
    assert sorted(ticks) == sorted(names)
    assert SCREENSHOT.stat().st_size > 5_000


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_api_marks_infeasible_trials(backend: str, tmp_path: Path, serve_dashboard: Serve,
                                     make_study: Callable[..., optuna.Study], infeasible_hook: object,
                                     api: Callable[[str], Any]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}" if backend == "sqlite" else f"journal:///{tmp_path / 's.log'}"
    study = make_study(url, tmp_path / "artifacts", n_trials=6, hooks=[infeasible_hook])
    base = serve_dashboard(url, tmp_path / "store")
    trials = api(f"{base}/api/studies/{study._study_id}")["trials"]
    assert len(trials) == 6
    infeasible = [t["number"] for t in trials if any(c > 0 for c in t["constraints"])]
    feasible = [t["number"] for t in trials if t["constraints"] and all(c <= 0 for c in t["constraints"])]
    assert infeasible == [2, 5]
    assert feasible == [0, 1, 3, 4]
    attrs = {a["key"]: a["value"] for a in trials[2]["user_attrs"]}
    assert {"peak_memory_predicted_mib", "wall_time_s", "epochs_run", "run_dir"} <= set(attrs)


class UploadWeights:
    """A trial hook uploading a stand-in weights file, as objectives do with their checkpoints."""

    def before(self, ctx: TrialContext) -> None:
        weights = ctx.run_dir / "best.pt"
        weights.write_bytes(b"weights of trial %d \x00\x01" % ctx.trial.number)
        assert ctx.artifact_store is not None
        artifact_id = upload_artifact(artifact_store=ctx.artifact_store, file_path=str(weights),
                                      study_or_trial=ctx.trial)
        ctx.trial.set_user_attr("weights_artifact_id", artifact_id)

    def after(self, ctx: TrialContext, metrics: object, error: BaseException | None) -> BaseException | None:
        return error


def test_artifacts_download_from_the_trial(tmp_path: Path, study_factory: Callable[..., optuna.Study],
                                           serve_dashboard: Serve, api: Callable[[str], Any]) -> None:
    study = study_factory(n_trials=2, hooks=[UploadWeights()])
    trial = study.trials[1]
    artifact_id = trial.user_attrs["weights_artifact_id"]
    # The worker's store lives under the spec's artifacts dir, as the dashboard's default does in the repo.
    base = serve_dashboard(f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "artifacts" / "_store")
    assert api(f"{base}/api/meta")["artifact_is_available"] is True
    listed = api(f"{base}/api/studies/{study._study_id}")["trials"][1]["artifacts"]
    assert [a["artifact_id"] for a in listed] == [artifact_id]
    url = f"{base}/artifacts/{study._study_id}/{trial._trial_id}/{artifact_id}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"weights of trial 1 \x00\x01"


def test_server_binds_localhost_and_writes_the_study_note(study_factory: Callable[..., optuna.Study],
                                                          tmp_path: Path, api: Callable[[str], Any]) -> None:
    study = study_factory(n_trials=1)
    dash = create_server(f"sqlite:///{tmp_path / 'study.db'}", port=0, artifacts=None).start()
    try:
        assert dash.server.server_address[0] == "127.0.0.1"
        assert dash.url.startswith("http://127.0.0.1:")
        detail = api(dash.url.replace("/dashboard", f"/api/studies/{study._study_id}"))
    finally:
        dash.stop()
    assert "`momentum`" in detail["note"]["body"]


def test_password_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 1: the connection fails, and the error must not carry the password.
    secret = "s3cr3t-pw"
    url = "postgresql+psycopg://hp:" + secret + "@127.0.0.1:1/hpstudy"
    assert main(["--storage", url, "--port", "0"]) == 1
    out, err = capsys.readouterr()
    assert "s3cr3t-pw" not in out + err
    assert "postgresql+psycopg://hp:***@127.0.0.1:1/hpstudy" in err
