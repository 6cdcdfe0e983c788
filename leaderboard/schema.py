"""SQLAlchemy tables of the leaderboard. The database schema is made by the Alembic revisions in
``leaderboard/schema_versions``; a test checks that they build exactly these tables."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


AUTOINCREMENT = {"sqlite_autoincrement": True}  # SQLite never reuses a deleted run's id


class Run(Base):
    """One invocation of ``harness run``: what was asked, where it ran, how it ended."""

    __tablename__ = "runs"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(
        String(32), unique=True, index=True, nullable=True
    )  # names the output folder (nullable in the v3 DDL; always set)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running | finished | failed | interrupted
    error: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(128), index=True)
    backbone: Mapped[str] = mapped_column(String(256), index=True)
    task_spec: Mapped[str] = mapped_column(String(512))  # what the user asked for, e.g. "offline"
    task_names: Mapped[list] = mapped_column(JSON)  # the resolved mteb task names, in order
    config: Mapped[dict] = mapped_column(JSON)  # the fully resolved config
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    git_sha: Mapped[str | None] = mapped_column(String(40))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    versions: Mapped[dict] = mapped_column(JSON)
    hardware: Mapped[dict] = mapped_column(JSON)
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    process_started_at: Mapped[float | None] = mapped_column(
        Float
    )  # with pid, names the live process (None before 0003)
    started_at: Mapped[float] = mapped_column(Float)  # unix seconds
    heartbeat_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    output_dir: Mapped[str | None] = mapped_column(String(1024))  # checkpoints of trained runs
    n_parameters: Mapped[int | None] = mapped_column(BigInteger)  # of the model that encodes, adapters included
    trainable_parameters: Mapped[int | None] = mapped_column(BigInteger)  # 0 for untrained methods
    embed_dim: Mapped[int | None] = mapped_column(Integer)

    scores: Mapped[list[Score]] = relationship(back_populates="run", cascade="all, delete-orphan", order_by="Score.id")
    timings: Mapped[list[Timing]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Timing.id"
    )


class Score(Base):
    """One mteb task result of a run: its main score (0-1) and every other number mteb gave, for
    the whole embedding (``dim`` 0) or its first ``dim`` dimensions (``harness run --dims``)."""

    __tablename__ = "scores"
    __table_args__ = (Index("ix_scores_run_task_dim", "run_id", "task", "dim", unique=True), AUTOINCREMENT)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(256), index=True)
    task_version: Mapped[str | None] = mapped_column(
        String(256)
    )  # the data's identity (task_version()); None: unknown
    task_type: Mapped[str | None] = mapped_column(String(64))  # mteb's task type (STS, Retrieval, ...); None: unknown
    main_metric: Mapped[str] = mapped_column(String(64))
    main_score: Mapped[float] = mapped_column(Float)
    details: Mapped[dict] = mapped_column(JSON)  # split -> subset -> metric -> value
    task_result: Mapped[dict | None] = mapped_column(JSON)  # mteb's whole TaskResult (schema v5)
    items: Mapped[dict | None] = mapped_column(
        JSON, deferred=True
    )  # per-item results (leaderboard.intervals; None before 0007)
    dim: Mapped[int] = mapped_column(
        Integer, server_default="0", default=0
    )  # the embedding's first N dims (--dims); 0: the whole vector
    #: the share of the task's texts found in the run's training texts (None: untrained, or not measured; 0009)
    contamination: Mapped[dict | None] = mapped_column(JSON)
    run: Mapped[Run] = relationship(back_populates="scores")


class Timing(Base):
    """Cost of one phase of a run (load, an evaluation, a training stage)."""

    __tablename__ = "timings"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(256))
    seconds: Mapped[float] = mapped_column(Float)
    items: Mapped[int | None] = mapped_column(Integer)
    tokens: Mapped[int | None] = mapped_column(BigInteger)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict | None] = mapped_column(JSON)  # e.g. samples/s, world size, batch sizes
    run: Mapped[Run] = relationship(back_populates="timings")


class Metric(Base):
    """One logged optimiser step of a training stage."""

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_stage_step", "run_id", "stage", "step", unique=True), AUTOINCREMENT)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)  # wall time since the stage began


class Diagnostic(Base):
    """A number a training stage measured on held-out data when it ended."""

    __tablename__ = "diagnostics"
    __table_args__ = (Index("ix_diagnostics_run_stage_name", "run_id", "stage", "name", unique=True), AUTOINCREMENT)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)


class DevScore(Base):
    """A dev task's main score at one step of a training stage (``--dev-tasks``,
    ``method_args.eval_every``): a training curve, never a test score."""

    __tablename__ = "dev_scores"
    __table_args__ = (
        Index("ix_dev_scores_run_stage_step_task", "run_id", "stage", "step", "task", unique=True),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(64))
    step: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(256))
    main_metric: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)  # mteb's main score, 0-1
    seconds: Mapped[float] = mapped_column(Float)  # wall seconds of this task's evaluation
