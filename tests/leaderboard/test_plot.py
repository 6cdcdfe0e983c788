"""`harness plot`: loss curves drawn from the steps a run recorded, checked in the files drawn."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from harness.cli import app

matplotlib = pytest.importorskip("matplotlib")


def _db_with_losses(tmp_path):
    from leaderboard.store import open_store

    db = tmp_path / "plot.db"
    store = open_store(db)
    for method, scale in (("first", 1.0), ("second", 2.0)):
        run_id = store.start_run(
            method=method,
            backbone="b",
            task_spec="t",
            task_names=["T"],
            config={},
            config_hash="h",
            seed=0,
            environment={},
        )
        store.record_metrics(
            run_id,
            "ic",
            [{"step": s, "loss": scale * math.exp(-s / 10), "lr": 1e-3, "seconds": 1.0} for s in range(1, 41)],
        )
        store.record_metrics(
            run_id, "cda", [{"step": s, "loss": scale * 0.7, "lr": 5e-4, "seconds": 1.0} for s in range(1, 11)]
        )
        store.finish_run(run_id)
    store.close()
    return db


def test_svg_has_a_panel_per_stage_and_a_line_per_run(tmp_path):
    db, out = _db_with_losses(tmp_path), tmp_path / "loss.svg"
    result = CliRunner().invoke(app, ["plot", "1", "2", "--out", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    for text in ("stage ic", "stage cda", "#1 first", "#2 second", "optimizer step"):
        assert text in svg
    # each run's line in each panel is a path with as many vertices as recorded steps (40 / 10)
    for gid, steps in (("loss-ic-0", 40), ("loss-ic-1", 40), ("loss-cda-0", 10), ("loss-cda-1", 10)):
        path = svg.split(f'<g id="{gid}">', 1)[1].split("</g>", 1)[0]
        assert path.count("\nL ") + 1 == steps, gid


def test_png_shows_both_runs_colours(tmp_path):
    import matplotlib.image

    db, out = _db_with_losses(tmp_path), tmp_path / "loss.png"
    result = CliRunner().invoke(app, ["plot", "1", "2", "--out", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    pixels = matplotlib.image.imread(out)[..., :3]
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):  # matplotlib's first two line colours
        close = (abs(pixels * 255 - colour) < 40).all(-1)
        assert close.sum() > 100, colour


@pytest.mark.parametrize(
    ("args", "fragment"), [(["1", "--out", "loss.txt"], "--out loss.txt"), (["7", "--out", "loss.png"], "no run 7")]
)
def test_bad_plot_requests_exit_2(tmp_path, monkeypatch, args, fragment):
    db = _db_with_losses(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["plot", *args, "--db", str(db)])
    assert result.exit_code == 2 and fragment in result.output
    assert not (tmp_path / "loss.png").exists() and not (tmp_path / "loss.txt").exists()
