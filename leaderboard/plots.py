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


def draw_losses(runs: Sequence[tuple[str, list[dict[str, Any]]]], out: Path) -> list[str]:
    """Write the loss of every (label, step metrics) run to ``out``; return the stages drawn."""
    try:
        import matplotlib
    except ImportError:
        raise LeaderboardError("harness plot draws with matplotlib: pip install 'harness[plot]'.") from None
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(m["stage"] for _, metrics in runs for m in metrics))
    if not stages:
        raise LeaderboardError("no training steps are recorded for these runs (untrained methods log none).")
    figure, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.6), squeeze=False)
    for axis, stage in zip(axes[0], stages):
        for index, (label, metrics) in enumerate(runs):
            points = sorted((m["step"], m["loss"]) for m in metrics if m["stage"] == stage)
            if points:  # gid: the line's id in an SVG, so readers (and tests) can find it
                axis.plot([p[0] for p in points], [p[1] for p in points], label=label, linewidth=1.2, gid=f"loss-{stage}-{index}")
        axis.set_title(f"stage {stage}")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("training loss")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable)
        figure.savefig(out)
    plt.close(figure)
    return stages
