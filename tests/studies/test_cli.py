"""The ``hpstudy`` command: core subcommands, and those a backend adds through its descriptor."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpstudy.studies.cli import COMMANDS, all_commands, main


def test_help_lists_the_core_commands_and_the_backends_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in (*COMMANDS, "shapes", "digits-data"):  # the last two come from the yolo and cnn backends
        assert f"  {name} " in out
    assert set(COMMANDS) < set(all_commands())


def test_an_unknown_command_is_one_line_listing_the_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trian"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown command 'trian'; allowed: run, launch,")
    assert "shapes" in err
    assert "\n" not in err


def test_a_backend_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cls"
    assert main(["shapes", "--task", "classify", "--n-train", "6", "--n-val", "3", "--imgsz", "32",
                 "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"train", "val"}
    assert sum(1 for _ in (out / "train").rglob("*.png")) + sum(1 for _ in (out / "train").rglob("*.jpg")) == 6
