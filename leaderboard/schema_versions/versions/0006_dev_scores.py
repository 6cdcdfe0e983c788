"""Dev scores: each dev task's main score at the steps of training it was evaluated at.

Revision ID: 0006
Revises: 0005
``harness run --dev-tasks ... --set method_args.eval_every=N`` evaluates its dev tasks every N
optimizer steps and at each stage's end; one row per (run, stage, step, task). They are never
scores: compare and leaderboard do not read them. A new table: existing rows are untouched.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dev_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("task", sa.String(256), nullable=False),
        sa.Column("main_metric", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_dev_scores_run_stage_step_task", "dev_scores", ["run_id", "stage", "step", "task"], unique=True
    )


def downgrade() -> None:
    op.drop_table("dev_scores")
