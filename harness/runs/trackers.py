"""`harness run --report-to tensorboard|mlflow|wandb`: a run's progress mirrored to experiment
trackers through accelerate's tracker classes, on rank 0, beside the leaderboard (which stays the
record: a tracker that fails mid-run is switched off with a warning, the run goes on).

What a tracker gets: the resolved config and the run's identity (run id, uuid, config hash, the
leaderboard it is recorded in) as hyperparameters; ``train/<stage>/loss`` and ``train/<stage>/lr``
at every logged step; ``time/<phase>/seconds`` (with tokens/s and MFU for training stages),
``diagnostics/<stage>/<name>`` and ``score/<task>`` (mteb's main score, 0-1) when they are known.
Steps count across stages (IC steps 1-100, then CDA 101-...), as wandb needs increasing steps.

Where: TensorBoard event files under ``<output-dir>/tensorboard/run-<id>-<uuid8>/``; MLflow in
``$MLFLOW_TRACKING_URI``, else a local store ``<output-dir>/mlflow.db`` (SQLite: MLflow 3 refuses its
old ``mlruns`` file store unless told otherwise; experiment ``$MLFLOW_EXPERIMENT_NAME``, else
``harness``); wandb in project ``$WANDB_PROJECT``, else
``harness``, files under ``$WANDB_DIR``, else ``<output-dir>`` (``WANDB_MODE=offline`` keeps it
local).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

#: name -> (the module it needs, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}


def check(names: Sequence[str]) -> list[str]:
    """The trackers asked for, each known and installed (else a HarnessError naming the option)."""
    chosen = list(dict.fromkeys(names))
    for name in chosen:
        if name not in TRACKERS:
            raise HarnessError(f"--report-to {name!r}: choose from {', '.join(TRACKERS)}.")
        module, extra = TRACKERS[name]
        if find_spec(module) is None:
            raise HarnessError(f"--report-to {name}: {module} is not installed: pip install 'harness[{extra}]'.")
    return chosen


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``a.b`` keys with scalar values (lists as JSON text), as trackers take them."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{name}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def _start(name: str, run_name: str, output_root: Path) -> Any:
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

    if name == "tensorboard":
        tracker = TensorBoardTracker(run_name, output_root / "tensorboard")
    elif name == "mlflow":
        import mlflow

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # MLflow 3 refuses its old file store by default
            output_root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{(output_root / 'mlflow.db').resolve()}"
        mlflow.set_tracking_uri(uri)  # process-wide: set by every run, so no run inherits another's
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "harness")
        artifacts = (output_root / "mlflow-artifacts").resolve().as_uri()
        tracker = MLflowTracker(experiment_name=experiment, logging_dir=artifacts, run_name=run_name)
    else:
        wandb_dir = Path(os.environ.get("WANDB_DIR", output_root))
        wandb_dir.mkdir(parents=True, exist_ok=True)
        tracker = WandBTracker(os.environ.get("WANDB_PROJECT", "harness"), name=run_name, dir=str(wandb_dir))
    tracker.start()
    return tracker


class Reporter:
    """The trackers of one run; every call reaches each tracker that still works."""

    def __init__(
        self, names: Sequence[str], run_name: str, output_root: Path, hyperparameters: dict[str, Any], warn: Any
    ) -> None:
        self.warn = warn
        self.step = 0
        self.trackers = {name: _start(name, run_name, output_root) for name in names}
        self._each(lambda tracker: tracker.store_init_configuration(hyperparameters))

    def _each(self, call: Any) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                call(tracker)
            except Exception as exc:  # the leaderboard holds the run; a tracker is a mirror
                del self.trackers[name]
                self.warn(f"warning: --report-to {name} stopped ({type(exc).__name__}: {exc}); the run goes on.")

    def log(self, values: dict[str, float], step: int | None = None) -> None:
        if values:
            self._each(lambda tracker: tracker.log(values, step=self.step if step is None else step))

    def steps(self, stage: str, logs: Sequence[Any]) -> None:
        for entry in logs:
            self.step += 1
            self.log({f"train/{stage}/loss": entry.loss, f"train/{stage}/lr": entry.lr})

    def timing(self, phase: str, seconds: float, details: dict | None) -> None:
        values = {f"time/{phase}/seconds": seconds}
        for key in ("tokens_per_s", "mfu"):
            if details and isinstance(details.get(key), (int, float)):
                values[f"time/{phase}/{key}"] = details[key]
        self.log(values)

    def finish(self) -> None:
        self._each(lambda tracker: tracker.finish())
        self.trackers.clear()
