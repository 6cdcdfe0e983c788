"""A running run's process is named by its pid and its start time.

Revision ID: 0003
Revises: 0002
A pid alone can be reused by another process after the run's died, and the heartbeat's age says
nothing about a process on this host that is busy for minutes. With the start time, a run on this
host is alive exactly while a process with that pid and that start time exists. Rows written
before this revision have none and are judged by pid alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("process_started_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("process_started_at")
