"""Scores at several embedding dims: each score says which prefix of the embedding it is for.

Revision ID: 0008
Revises: 0007
``harness run --dims 64,128`` evaluates the run's vectors cut to their first N dims (then
re-normalised) besides the whole vector; each is a score of its own. ``scores.dim`` is that N, 0 for
the whole vector: every existing row is a whole-vector score and reads 0. A run's task is unique per
dim.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("dim", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_index("ix_scores_run_task")
        batch.create_index("ix_scores_run_task_dim", ["run_id", "task", "dim"], unique=True)


def downgrade() -> None:
    op.execute("DELETE FROM scores WHERE dim != 0")
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index("ix_scores_run_task_dim")
        batch.create_index("ix_scores_run_task", ["run_id", "task"], unique=True)
        batch.drop_column("dim")
