"""Opening the leaderboard database and reading and writing runs.

Every write is its own short transaction (on SQLite ``BEGIN IMMEDIATE`` in WAL mode with a busy
timeout; on PostgreSQL the server's own, with row locks where a write re-reads what it changes), so
many processes can record runs into one database while others read it, and a crash at any point
leaves either the whole write or none of it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from harness import faults
from harness.paths import writable_file
from leaderboard import liveness
from leaderboard.database import Location, check_integrity, check_sqlite_file, locate
from leaderboard.errors import LeaderboardError, MissingLeaderboard
from leaderboard.migrations import NoLeaderboard, SchemaError, check_readable, prepare, upgrade
from leaderboard.reads import RunReads, run_record
from leaderboard.schema import DevScore, Diagnostic, Metric, Run, Score, Timing

STATUSES = ("running", "finished", "failed", "interrupted")


def open_store(db: str | os.PathLike[str], *, create: bool = True, read_only: bool = False) -> RunStore:
    """Open the leaderboard at ``db``: a SQLite file path or a database URL (see
    ``leaderboard.database.locate``).

    A store that records runs (the default) creates the database where ``create`` allows and brings
    a local SQLite file to this release's schema (``migrations.prepare``); ``read_only`` changes
    nothing, and refuses a schema other than this release's with the command that upgrades it.
    Raises ``LeaderboardError`` for a database that is not a harness leaderboard or cannot be
    reached, and for a missing one when ``create`` is false (``MissingLeaderboard``). A database
    that is refused is never modified.
    """
    where = locate(db)
    liveness.stale_after()  # a bad HARNESS_STALE_AFTER stops every command before it reads
    create = create and not read_only
    _check_file(where, create=create)
    _schema(where, lambda: check_readable(where) if read_only else prepare(where, create=create))
    return RunStore(where, read_only=read_only)


def upgrade_store(db: str | os.PathLike[str]) -> str | None:
    """``harness db upgrade``: the revision ``db`` was at before (None: it was current)."""
    where = locate(db)
    _check_file(where, create=False)
    return _schema(where, lambda: upgrade(where))


def _check_file(where: Location, *, create: bool) -> None:
    """A SQLite file's path, existence and integrity, before anything could write to it."""
    if not where.is_sqlite:
        return
    path = where.path
    check_sqlite_file(path)
    if not path.exists() and not create:
        raise MissingLeaderboard(f"no leaderboard at {path} yet: `harness run` creates it.")
    if not path.exists():
        check_new_location(where)
    elif path.stat().st_size > 0:
        check_integrity(path)  # before an upgrade could write to a damaged file


def _schema(where: Location, step: Callable[[], Any]) -> Any:
    """``step`` (a check or an upgrade of ``where``'s schema), its errors as the harness's own."""
    try:
        return step()
    except NoLeaderboard as exc:
        raise MissingLeaderboard(str(exc)) from None
    except SchemaError as exc:
        raise LeaderboardError(str(exc)) from None
    except ModuleNotFoundError as exc:
        raise LeaderboardError(
            f"--db {where}: {exc.name} is not installed: pip install 'harness[postgres]'."
        ) from None
    except Exception as exc:  # a corrupt or encrypted file, a server that cannot be reached
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LeaderboardError(f"--db {where} cannot be opened as a database: {first_line}") from None


def check_new_location(where: Location) -> None:
    """What can be checked of a database without opening it: a SQLite file's path and folder."""
    liveness.stale_after()
    if where.is_sqlite:
        check_sqlite_file(where.path)
        writable_file(where.path, "--db")


class RunStore(RunReads):
    """Reads and writes runs in one leaderboard database."""

    # -- the lifecycle of a run ------------------------------------------------------------
    def start_run(
        self,
        *,
        method: str,
        backbone: str,
        task_spec: str,
        task_names: Sequence[str],
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        environment: dict[str, Any],
        run_uuid: str | None = None,
    ) -> int:
        """Record a new run as ``running`` and return its id; ``run_uuid`` (default: a new random
        one) is the run's identity across databases."""
        now = time.time()
        host, pid, process_started_at = liveness.this_process()
        run = Run(
            uuid=run_uuid or uuid.uuid4().hex,
            status="running",
            method=method,
            backbone=backbone,
            task_spec=task_spec,
            task_names=list(task_names),
            config=config,
            config_hash=config_hash,
            seed=seed,
            git_sha=environment.get("git_sha"),
            git_dirty=environment.get("git_dirty"),
            versions=environment.get("versions", {}),
            hardware=environment.get("hardware", {}),
            host=host,
            pid=pid,
            process_started_at=process_started_at,
            started_at=now,
            heartbeat_at=now,
        )
        with self._session(write=True) as session:
            session.add(run)
            session.flush()
            return run.id

    def heartbeat(self, run_id: int) -> None:
        with self._session(write=True) as session:
            self._get(session, run_id).heartbeat_at = time.time()

    def record_score(
        self,
        run_id: int,
        *,
        task: str,
        main_metric: str,
        main_score: float,
        details: dict,
        task_result: dict | None = None,
        task_version: str | None = None,
        task_type: str | None = None,
        items: dict | None = None,
        dim: int = 0,
        contamination: dict | None = None,
    ) -> None:
        """Store (or replace) one task's scores of a run (and mteb's whole TaskResult, as a dict),
        with the version of the task's data (``harness.evaluation.tasks.task_version``) and mteb's
        type of the task (``STS``, ``Retrieval``, ...), and its per-item results (``leaderboard.intervals``);
        ``dim``: the embedding's first N dims it was computed on (0: the whole vector);
        ``contamination``: how many of the task's texts the run trained on (None: not measured)."""
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            existing = session.scalar(
                select(Score).where(Score.run_id == run_id, Score.task == task, Score.dim == dim)
            )
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(
                Score(
                    run_id=run_id,
                    task=task,
                    task_version=task_version,
                    task_type=task_type,
                    main_metric=main_metric,
                    main_score=float(main_score),
                    details=details,
                    task_result=task_result,
                    items=items,
                    dim=dim,
                    contamination=contamination,
                )
            )
            run.heartbeat_at = time.time()
            session.flush()
            faults.point("score-write")  # killed here, the transaction never commits

    def record_timing(
        self,
        run_id: int,
        *,
        phase: str,
        seconds: float,
        items: int | None = None,
        tokens: int | None = None,
        peak_memory_bytes: int | None = None,
        details: dict | None = None,
    ) -> None:
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            session.add(
                Timing(
                    run_id=run_id,
                    phase=phase,
                    seconds=float(seconds),
                    items=items,
                    tokens=tokens,
                    peak_memory_bytes=peak_memory_bytes,
                    details=details,
                )
            )
            run.heartbeat_at = time.time()

    def record_metrics(self, run_id: int, stage: str, rows: Sequence[dict[str, float]]) -> None:
        """Store logged steps (``step``, ``loss``, ``lr``, ``seconds``); a re-logged step replaces."""
        if not rows:
            return
        steps = [int(r["step"]) for r in rows]
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            for old in session.scalars(
                select(Metric).where(Metric.run_id == run_id, Metric.stage == stage, Metric.step.in_(steps))
            ):
                session.delete(old)
            session.flush()
            session.add_all(
                Metric(
                    run_id=run_id,
                    stage=stage,
                    step=int(r["step"]),
                    loss=float(r["loss"]),
                    lr=float(r["lr"]),
                    seconds=float(r["seconds"]),
                )
                for r in rows
            )
            run.heartbeat_at = time.time()

    def record_diagnostics(self, run_id: int, stage: str, values: dict[str, float]) -> None:
        """Store (or replace) a stage's diagnostics, one transaction."""
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            for old in session.scalars(
                select(Diagnostic).where(Diagnostic.run_id == run_id, Diagnostic.stage == stage)
            ):
                session.delete(old)
            session.flush()
            session.add_all(
                Diagnostic(run_id=run_id, stage=stage, name=name, value=float(v)) for name, v in values.items()
            )
            run.heartbeat_at = time.time()

    def record_dev_scores(self, run_id: int, stage: str, step: int, rows: Sequence[dict[str, Any]]) -> None:
        """Store (or replace) one dev evaluation: a row per task (``task``, ``main_metric``,
        ``score``, ``seconds``) at ``step`` of ``stage``, one transaction."""
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            tasks = [str(r["task"]) for r in rows]
            for old in session.scalars(
                select(DevScore).where(
                    DevScore.run_id == run_id, DevScore.stage == stage, DevScore.step == step, DevScore.task.in_(tasks)
                )
            ):
                session.delete(old)
            session.flush()
            session.add_all(
                DevScore(
                    run_id=run_id,
                    stage=stage,
                    step=int(step),
                    task=str(r["task"]),
                    main_metric=str(r["main_metric"]),
                    score=float(r["score"]),
                    seconds=float(r["seconds"]),
                )
                for r in rows
            )
            run.heartbeat_at = time.time()

    def record_model(self, run_id: int, **facts: int) -> None:
        """Store facts about the run's model: ``n_parameters``, ``trainable_parameters``, ``embed_dim``."""
        unknown = set(facts) - {"n_parameters", "trainable_parameters", "embed_dim"}
        if unknown:
            raise ValueError(f"not a model fact: {sorted(unknown)}")
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            for name, value in facts.items():
                setattr(run, name, int(value))

    def set_output_dir(self, run_id: int, output_dir: str) -> None:
        with self._session(write=True) as session:
            self._get(session, run_id).output_dir = output_dir

    def reopen_run(self, run_id: int) -> dict[str, Any]:
        """Mark a failed or interrupted run as running again in this process (for ``--resume``)."""
        with self._session(write=True) as session:
            run = self._get(session, run_id, lock=True)
            if run.status == "finished":
                raise LeaderboardError(f"run {run_id} is already finished; nothing to resume.")
            if run.status == "running" and not liveness.stale_reason(
                run, socket.gethostname(), time.time(), liveness.stale_after()
            ):
                raise LeaderboardError(f"run {run_id} is still running (process {run.pid} on {run.host}).")
            run.status, run.error, run.ended_at = "running", None, None
            run.host, run.pid, run.process_started_at = liveness.this_process()
            run.heartbeat_at = time.time()
            return run_record(run, full=True)

    def delete_run(self, run_id: int) -> None:
        """Remove a run with its scores, timings and step metrics (one transaction)."""
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            if run.status == "running":
                raise LeaderboardError(f"run {run_id} is running; it cannot be deleted.")
            session.delete(run)

    def finish_run(self, run_id: int) -> None:
        self._end(run_id, "finished", None)

    def fail_run(self, run_id: int, error: str) -> None:
        self._end(run_id, "failed", error)

    def interrupt_run(self, run_id: int, reason: str) -> None:
        """Ctrl-C or SIGTERM: the run stopped on request and can be resumed."""
        self._end(run_id, "interrupted", reason)

    def _end(self, run_id: int, status: str, error: str | None) -> None:
        with self._session(write=True) as session:
            run = self._get(session, run_id)
            run.status = status
            run.error = error
            run.ended_at = time.time()

    def reap_stale(self) -> list[int]:
        """Mark as failed every ``running`` run whose process is gone: on this host by its pid and
        start time (never by heartbeat), on another host by a heartbeat older than
        ``HARNESS_STALE_AFTER`` (see :mod:`leaderboard.liveness`)."""
        host, now, limit = socket.gethostname(), time.time(), liveness.stale_after()
        columns = (Run.id, Run.host, Run.pid, Run.process_started_at, Run.heartbeat_at)
        with self._session(write=False) as session:
            running = session.execute(select(*columns).where(Run.status == "running"))
            suspects = [row.id for row in running if liveness.stale_reason(row, host, now, limit)]
        if not suspects:
            return []  # a read command takes no write lock unless there is something to reap
        with self._session(write=True) as session:
            reaped = []
            for run in session.scalars(
                select(Run).where(Run.status == "running", Run.id.in_(suspects)).with_for_update()
            ):
                reason = liveness.stale_reason(run, host, now, limit)
                if reason:
                    run.status, run.ended_at, run.error = "failed", now, reason
                    reaped.append(run.id)
            return reaped

    @contextmanager
    def heartbeat_while(self, run_id: int) -> Iterator[None]:
        """Refresh the run's heartbeat every ``HEARTBEAT_S`` from a thread while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(liveness.HEARTBEAT_S):
                try:
                    self.heartbeat(run_id)
                except Exception:  # a busy database must not kill the run; the next beat retries
                    continue

        thread = threading.Thread(target=beat, name=f"heartbeat-run-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
