"""Every score keeps its per-item results, so a comparison can be recomputed without the model.

Revision ID: 0007
Revises: 0006
``scores.items`` holds what the main score is computed from, item by item (``leaderboard.intervals``):
per pair for STS and pair classification, per query for retrieval and reranking, per test item for
classification, per experiment for clustering. Existing rows cannot recover them (the vectors are
gone) and stay NULL: shown as recorded before per-item results.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scores", sa.Column("items", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("items")
