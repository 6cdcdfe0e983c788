"""Where a run's progress goes: the leaderboard (rank 0) and the trackers of ``--report-to``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import config_hash
from harness.runs import folders
from harness.runs.trackers import Reporter, flat_config
from harness.training import Hooks, StepLog

if TYPE_CHECKING:
    from rich.console import Console

    from harness.runs.dev_scores import DevEvaluator
    from harness.runs.trackers import Reporter
    from harness.telemetry.phases import Phase
    from leaderboard.store import RunStore


class Recorder(Hooks):
    """Writes a run's progress to the leaderboard on rank 0, and mirrors it to the trackers of
    ``--report-to``; on other ranks (no store) it does nothing."""

    def __init__(
        self, store: RunStore | None, run_id: int, console: Console | None = None, warnings: list[str] | None = None
    ) -> None:
        self.store, self.run_id, self.console = store, run_id, console
        self.reporter: Reporter | None = None  # set by the run for --report-to
        self.dev: DevEvaluator | None = None  # set by the run for --dev-tasks
        self.warnings = warnings if warnings is not None else []  # the CLI repeats them after the table

    def note(self, message: str) -> None:
        if self.store is not None and self.console is not None:
            self.console.print(f"  {message}", highlight=False, soft_wrap=True)
            if message.startswith("warning:"):
                self.warnings.append(message)

    def timing(self, phase: Phase, details: dict | None = None) -> None:
        if self.store is not None:
            self.store.record_timing(self.run_id, **phase.as_dict(), details=details)
        if self.reporter is not None:
            self.reporter.timing(phase.phase, phase.seconds, details)

    def score(
        self,
        task: str,
        version: str,
        task_type: str,
        main_metric: str,
        main_score: float,
        details: dict,
        task_result: dict | None = None,
        items: dict | None = None,
        dim: int = 0,
        contamination: dict | None = None,
    ) -> None:
        if self.store is not None:
            self.store.record_score(
                self.run_id,
                task=task,
                task_version=version,
                task_type=task_type,
                main_metric=main_metric,
                main_score=main_score,
                details=details,
                task_result=task_result,
                items=items,
                dim=dim,
                contamination=contamination,
            )
        if self.reporter is not None:
            self.reporter.log({f"score/{task}" + (f"@{dim}" if dim else ""): main_score})

    def model(self, **facts: int) -> None:
        if self.store is not None:
            self.store.record_model(self.run_id, **facts)

    def steps(self, stage: str, logs: list[StepLog]) -> None:
        if self.store is not None:
            self.store.record_metrics(self.run_id, stage, [dataclasses.asdict(log) for log in logs])
        if self.reporter is not None:
            self.reporter.steps(stage, logs)

    def dev_evaluation(self, stage: str, step: int) -> None:
        if self.dev is not None:
            self.dev(stage, step)

    def dev_scores(self, stage: str, step: int, rows: list[dict[str, Any]]) -> None:
        """One dev evaluation: a row per task (``task``, ``main_metric``, ``score``, ``seconds``)."""
        if self.store is not None:
            self.store.record_dev_scores(self.run_id, stage, step, rows)
        if self.reporter is not None:
            self.reporter.log({f"dev/{stage}/{row['task']}": row["score"] for row in rows})

    def checkpoint(self, path: Path) -> None:
        if self.store is not None:
            self.store.heartbeat(self.run_id)

    def report_to(self, names: Sequence[str], run_uuid: str, resolved: dict[str, Any], output_root: Path) -> Reporter:
        """Mirror the run to the trackers ``names``, told the resolved config and where the run is recorded."""

        assert self.store is not None
        identity = {
            "harness.run_id": self.run_id,
            "harness.run_uuid": run_uuid,
            "harness.config_hash": config_hash(resolved),
            "harness.leaderboard": str(self.store.location),
        }
        folder = folders.folder_name(self.run_id, run_uuid)
        self.reporter = Reporter(names, folder, output_root, {**flat_config(resolved), **identity}, self.note)
        return self.reporter

    def diagnostics(self, stage: str, values: dict[str, float]) -> None:
        if self.store is not None:
            self.store.record_diagnostics(self.run_id, stage, values)
            if self.reporter is not None:
                self.reporter.log({f"diagnostics/{stage}/{name}": value for name, value in values.items()})
            if self.console is not None:
                shown = ", ".join(f"{name} {value:.3f}" for name, value in values.items())
                self.console.print(f"  {stage} diagnostics: {shown}", highlight=False, soft_wrap=True)
