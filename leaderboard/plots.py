"""Loss curves of recorded runs drawn with matplotlib (the optional ``plot`` extra), one panel per
stage, one line per run, for people who read results without a browser."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.paths import writable_file
from leaderboard.errors import LeaderboardError

FORMATS = (".png", ".svg", ".pdf")


def check_output(out: Path) -> None:
    """Refuse an output file matplotlib would not write, before anything is read or drawn."""
    if out.suffix.lower() not in FORMATS:
        raise LeaderboardError(f"--out {out}: choose a file ending in {', '.join(FORMATS)}.")
    writable_file(out, "--out")


def draw_losses(
    runs: Sequence[tuple[str, list[dict[str, Any]]]],
    out: Path,
    dev: Sequence[tuple[str, list[dict[str, Any]]]] | None = None,
) -> list[str]:
    """Write the loss of every (label, step metrics) run to ``out``, and with ``dev`` (label, dev
    score rows) a second row of panels with each dev task's score per step; return the stages drawn."""
    try:
        import matplotlib
    except ImportError:
        raise LeaderboardError("harness plot draws with matplotlib: pip install 'harness[plot]'.") from None
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(m["stage"] for _, metrics in runs for m in metrics))
    if not stages:
        raise LeaderboardError("no training steps are recorded for these runs (untrained methods log none).")
    rows = 1 if dev is None else 2
    figure, axes = plt.subplots(rows, len(stages), figsize=(5 * len(stages), 3.6 * rows), squeeze=False)
    for axis, stage in zip(axes[0], stages):
        for index, (label, metrics) in enumerate(runs):
            points = sorted((m["step"], m["loss"]) for m in metrics if m["stage"] == stage)
            if points:  # gid: the line's id in an SVG, so readers (and tests) can find it
                axis.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    label=label,
                    linewidth=1.2,
                    gid=f"loss-{stage}-{index}",
                )
        _finish(axis, f"stage {stage}", "training loss")
    if dev is not None:
        for axis, stage in zip(axes[1], stages):
            _draw_dev(axis, stage, dev)
    figure.tight_layout()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable)
        figure.savefig(out)
    plt.close(figure)
    return stages


def _draw_dev(axis: Any, stage: str, dev: Sequence[tuple[str, list[dict[str, Any]]]]) -> None:
    """One stage's dev scores (x100): a line per run and dev task, gid ``dev-STAGE-RUN-TASK``."""
    for index, (label, rows) in enumerate(dev):
        for task in dict.fromkeys(r["task"] for r in rows if r["stage"] == stage):
            points = sorted((r["step"], 100 * r["score"]) for r in rows if r["stage"] == stage and r["task"] == task)
            axis.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                markersize=3,
                linewidth=1.2,
                label=f"{label} {task}",
                gid=f"dev-{stage}-{index}-{task}",
            )
    _finish(axis, f"stage {stage}: dev scores", "main score x100")


def _finish(axis: Any, title: str, ylabel: str) -> None:
    axis.set_title(title)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize="small")
