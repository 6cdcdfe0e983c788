"""Baseline: the schema as it stood at user_version 5, the last version before Alembic.

Revision ID: 0001
Revises:
New databases (SQLite or a server) are created by it; SQLite files written before Alembic were
brought to v5 and stamped with it by harness 0.1.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AUTOINCREMENT = {"sqlite_autoincrement": True}  # SQLite never reuses a deleted run's id


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _run_id() -> sa.Column:
    return sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "runs",
        _id(),
        sa.Column("uuid", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("backbone", sa.String(256), nullable=False),
        sa.Column("task_spec", sa.String(512), nullable=False),
        sa.Column("task_names", sa.JSON, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("git_sha", sa.String(40)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("hardware", sa.JSON, nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("output_dir", sa.String(1024)),
        sa.Column("n_parameters", sa.Integer),
        sa.Column("trainable_parameters", sa.Integer),
        sa.Column("embed_dim", sa.Integer),
        **AUTOINCREMENT,
    )
    for column in ("status", "method", "backbone", "config_hash"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_index("ix_runs_uuid", "runs", ["uuid"], unique=True)
    op.create_table(
        "scores",
        _id(),
        _run_id(),
        sa.Column("task", sa.String(256), nullable=False),
        sa.Column("main_metric", sa.String(64), nullable=False),
        sa.Column("main_score", sa.Float, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("task_result", sa.JSON),
        **AUTOINCREMENT,
    )
    op.create_index("ix_scores_run_task", "scores", ["run_id", "task"], unique=True)
    op.create_index("ix_scores_task", "scores", ["task"])
    op.create_table(
        "timings",
        _id(),
        _run_id(),
        sa.Column("phase", sa.String(256), nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("items", sa.Integer),
        sa.Column("tokens", sa.Integer),
        sa.Column("peak_memory_bytes", sa.Integer),
        sa.Column("details", sa.JSON),
        **AUTOINCREMENT,
    )
    op.create_index("ix_timings_run_id", "timings", ["run_id"])
    op.create_table(
        "metrics",
        _id(),
        _run_id(),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("loss", sa.Float, nullable=False),
        sa.Column("lr", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        **AUTOINCREMENT,
    )
    op.create_index("ix_metrics_run_stage_step", "metrics", ["run_id", "stage", "step"], unique=True)
    op.create_table(
        "diagnostics",
        _id(),
        _run_id(),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        **AUTOINCREMENT,
    )
    op.create_index("ix_diagnostics_run_stage_name", "diagnostics", ["run_id", "stage", "name"], unique=True)


def downgrade() -> None:
    for table in ("diagnostics", "metrics", "timings", "scores", "runs"):
        op.drop_table(table)
