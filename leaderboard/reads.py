"""Reading runs from a leaderboard database: one run whole, or listings filtered by id, status,
method and backbone (two plain SQL queries, so listing thousands of runs stays fast).

Reads never write: a ``running`` run whose process is gone reads as ``failed`` (with the reason)
here, and is marked so by the next command that records (``RunStore.reap_stale``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from leaderboard import liveness
from leaderboard.database import Location, make_engine
from leaderboard.efficiency import EVALUATE, RunCost, run_costs
from leaderboard.errors import LeaderboardError
from leaderboard.intervals import summary
from leaderboard.schema import DevScore, Diagnostic, Metric, Run, Score, Timing


class RunReads:
    """The reading half of :class:`leaderboard.store.RunStore`."""

    def __init__(self, location: Location, *, read_only: bool = False) -> None:
        """``read_only``: its reads change nothing on disk (``database.connect_in_place``)."""
        self.location = location
        self._reader = make_engine(location, write=False, in_place=read_only)
        self._writer = make_engine(location, write=True)

    def close(self) -> None:
        self._reader.dispose()
        self._writer.dispose()

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        with Session(self._writer if write else self._reader, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def _get(self, session: Session, run_id: int, *, lock: bool = False) -> Run:
        run = (
            session.get(Run, run_id, with_for_update=lock) if storable(run_id) else None
        )  # FOR UPDATE on a server; SQLite locked already
        if run is None:
            raise LeaderboardError(f"no run {run_id} in {self.location}.")
        return run

    def task_results(self, run_id: int, dim: int = 0) -> dict[str, dict | None]:
        """Task -> mteb's TaskResult as recorded (None for rows written before schema v5), of the
        whole embedding (``dim`` 0) or its first ``dim`` dims."""
        with self._session(write=False) as session:
            rows = session.execute(
                select(Score.task, Score.task_result)
                .where(Score.run_id == run_id, Score.dim == dim)
                .order_by(Score.id)
            )
            return {task: result for task, result in rows}

    def score_dims(self, run_id: int) -> list[int]:
        """The dims the run has scores at, 0 (whole vectors) first."""
        with self._session(write=False) as session:
            return sorted(session.scalars(select(Score.dim).where(Score.run_id == run_id).distinct()))

    def score_items(self, run_ids: Sequence[int], dim: int = 0) -> dict[int, dict[str, dict | None]]:
        """Each run's per-item results by task (``leaderboard.intervals``; None: recorded before
        they were kept) at ``dim`` (0: the whole embedding), in one query."""
        ids = bindparam("ids", [i for i in run_ids if storable(i)], expanding=True, literal_execute=True)
        found: dict[int, dict[str, dict | None]] = {run_id: {} for run_id in run_ids}
        with self._session(write=False) as session:
            for run_id, task, items in session.execute(
                select(Score.run_id, Score.task, Score.items).where(Score.run_id.in_(ids), Score.dim == dim)
            ):
                found[run_id][task] = items
        return found

    def diagnostics(self, run_id: int) -> list[dict[str, Any]]:
        with self._session(write=False) as session:
            query = select(Diagnostic).where(Diagnostic.run_id == run_id).order_by(Diagnostic.id)
            return [{"stage": d.stage, "name": d.name, "value": d.value} for d in session.scalars(query)]

    def metrics(self, run_id: int) -> list[dict[str, Any]]:
        with self._session(write=False) as session:
            query = select(Metric).where(Metric.run_id == run_id).order_by(Metric.id)
            return [
                {"stage": m.stage, "step": m.step, "loss": m.loss, "lr": m.lr, "seconds": m.seconds}
                for m in session.scalars(query)
            ]

    def dev_scores(self, run_id: int) -> list[dict[str, Any]]:
        """The run's dev evaluations during training, in the order they were made."""
        with self._session(write=False) as session:
            query = select(DevScore).where(DevScore.run_id == run_id).order_by(DevScore.id)
            return [_columns(d, DEV_SCORE_COLUMNS) for d in session.scalars(query)]

    def evaluation_costs(self, run_ids: Sequence[int]) -> dict[int, RunCost]:
        """Each run's model size and evaluate timings (``leaderboard.efficiency``), in one query;
        the ids go in as literals, so any number of runs fits in it."""
        ids = bindparam("ids", [i for i in run_ids if storable(i)], expanding=True, literal_execute=True)
        query = (
            select(
                Run.id,
                Run.n_parameters,
                Run.embed_dim,
                Timing.phase,
                Timing.seconds,
                Timing.items,
                Timing.tokens,
                Timing.peak_memory_bytes,
                Timing.details,
            )
            .outerjoin(Timing, (Timing.run_id == Run.id) & Timing.phase.startswith(EVALUATE))
            .where(Run.id.in_(ids))
            .order_by(Run.id, Timing.id)
        )
        with self._session(write=False) as session:
            return run_costs(session.execute(query))

    # -- reading -----------------------------------------------------------------------------
    def get_run(self, run_id: int, *, full: bool = True) -> dict[str, Any]:
        with self._session(write=False) as session:
            return run_record(self._get(session, run_id), full=full)

    def runs(
        self,
        *,
        ids: Sequence[int] | None = None,
        statuses: Sequence[str] | None = ("finished",),
        method: str | None = None,
        backbone: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
        dim: int = 0,
    ) -> list[dict[str, Any]]:
        """Runs matching every given filter, as plain dicts (see ``run_record``), with their scores
        of the whole embedding (``dim`` 0) or of its first ``dim`` dims (``harness run --dims``).

        Two plain SQL queries (runs, then their main scores), no ORM objects: listing 10,000 runs
        stays well under a second.
        """
        conditions = []
        if ids is not None:
            conditions.append(Run.id.in_([i for i in ids if storable(i)]))
        # a dead run reads as failed: "failed" also asks for running rows, and both are checked below
        wanted_statuses = None if statuses is None else {*statuses, *(["running"] if "failed" in statuses else [])}
        recheck = statuses is not None and "running" in wanted_statuses
        if wanted_statuses is not None:
            conditions.append(Run.status.in_(sorted(wanted_statuses)))
        if method is not None:
            conditions.append(Run.method == method)
        if backbone is not None:
            conditions.append(Run.backbone == backbone)
        order = Run.id.desc() if newest_first else Run.id
        sql_limit = None if recheck else limit
        with self._session(write=False) as session:
            rows = session.execute(select(*_SUMMARY).where(*conditions).order_by(order).limit(sql_limit)).all()
            shown = {row.id: effective_status(row) for row in rows}  # once: a run may die meanwhile
            if recheck:
                rows = [row for row in rows if shown[row.id][0] in statuses][:limit]
            scores: dict[int, dict[str, float]] = {row.id: {} for row in rows}
            versions: dict[int, dict[str, str | None]] = {row.id: {} for row in rows}
            types: dict[int, dict[str, str | None]] = {row.id: {} for row in rows}
            seen: dict[int, dict[str, dict]] = {row.id: {} for row in rows}
            for run_id, task, value, version, kind, overlap in session.execute(
                select(
                    Score.run_id,
                    Score.task,
                    Score.main_score,
                    Score.task_version,
                    Score.task_type,
                    Score.contamination,
                )
                .where(
                    Score.run_id.in_(bindparam("ids", list(scores), expanding=True, literal_execute=True)),
                    Score.dim == dim,
                )
                .order_by(Score.id)
            ):
                scores[run_id][task] = value
                versions[run_id][task] = version
                types[run_id][task] = kind
                if overlap is not None:
                    seen[run_id][task] = overlap
        records = [
            _summary(row, scores[row.id], versions[row.id], types[row.id], seen[row.id], shown[row.id])
            | ({"dim": dim} if dim else {})
            for row in rows
        ]
        if ids is not None:
            missing = sorted(set(ids) - {r["run_id"] for r in records})
            if missing:
                raise LeaderboardError(
                    f"no run {', '.join(map(str, missing))} in {self.location}"
                    + ("" if statuses is None else f" with status {'/'.join(statuses)}")
                    + "."
                )
            order = {run_id: i for i, run_id in enumerate(ids)}
            records.sort(key=lambda r: order[r["run_id"]])
        return records


def _columns(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """``row``'s attributes ``names`` as a plain dict."""
    return {name: getattr(row, name) for name in names}


SCORE_COLUMNS = ("task", "dim", "task_version", "task_type", "main_metric", "main_score", "details", "contamination")
DEV_SCORE_COLUMNS = ("stage", "step", "task", "main_metric", "score", "seconds")
TIMING_COLUMNS = ("phase", "seconds", "items", "tokens", "peak_memory_bytes", "details")


def _summary(
    run: Any,
    scores: dict[str, float],
    versions: dict[str, str | None],
    types: dict[str, str | None],
    contamination: dict[str, dict],
    shown: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    """The fields every listing shows, from an ORM run or a plain SQL row of ``_SUMMARY``;
    ``task_versions`` says which data each score was computed on, ``task_types`` mteb's type
    of each task (None: unknown) and ``contamination`` the measured overlap of each task's texts
    with the run's training texts (tasks never measured are absent); ``shown``: the status and
    error as the listing decided them (else read here)."""
    status, error = shown or effective_status(run)
    return {
        "run_id": run.id,
        "status": status,
        "method": run.method,
        "backbone": run.backbone,
        "task_spec": run.task_spec,
        "tasks": list(run.task_names),
        "scores": scores,
        "task_versions": versions,
        "task_types": types,
        "contamination": contamination,
        "config_hash": run.config_hash,
        "seed": run.seed,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": error,
    }


def effective_status(run: Any) -> tuple[str, str | None]:
    """``run``'s status and error as a read shows them: a ``running`` row whose process is gone
    is ``failed``, with the reason the next recording command will write."""
    if run.status == "running":
        reason = liveness.stale_reason(run, socket.gethostname(), time.time(), liveness.stale_after())
        if reason:
            return "failed", reason
    return run.status, run.error


def run_record(run: Run, *, full: bool = False) -> dict[str, Any]:
    """A run as a plain JSON-ready dict (``scores``: of the whole embedding); ``full`` adds config,
    environment and score details (every dim's, each with its ``dim``, 0 for the whole vector)."""
    whole = [s for s in run.scores if not s.dim]
    record = _summary(
        run,
        {s.task: s.main_score for s in whole},
        {s.task: s.task_version for s in whole},
        {s.task: s.task_type for s in whole},
        {s.task: s.contamination for s in whole if s.contamination is not None},
    )
    if full:
        record.update(_columns(run, FULL_COLUMNS))
        record.update(
            score_details=[{**_columns(s, SCORE_COLUMNS), "items": summary(s.items)} for s in run.scores],
            timings=[_columns(t, TIMING_COLUMNS) for t in run.timings],
        )
    return record


#: the columns of a run that ``full`` records add, under their own names
FULL_COLUMNS = (
    "uuid",
    "config",
    "git_sha",
    "git_dirty",
    "versions",
    "hardware",
    "host",
    "pid",
    "heartbeat_at",
    "output_dir",
    "n_parameters",
    "trainable_parameters",
    "embed_dim",
)


ID_LIMIT = 2**63 - 1  # the largest id either back-end can hold


def storable(run_id: int) -> bool:
    """An id that could name a row (larger ones cannot be sent to the database at all)."""
    return 0 < run_id <= ID_LIMIT


_SUMMARY = (
    Run.id,
    Run.status,
    Run.method,
    Run.backbone,
    Run.task_spec,
    Run.task_names,
    Run.config_hash,
    Run.seed,
    Run.started_at,
    Run.ended_at,
    Run.error,
    Run.host,
    Run.pid,
    Run.process_started_at,
    Run.heartbeat_at,
)
