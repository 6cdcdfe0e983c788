"""How much of each task's texts a trained run saw in training, recorded with the score.

Revision ID: 0009
Revises: 0008
``scores.contamination`` holds the counts and fractions of the task's distinct evaluated texts
found in the run's training texts, exactly and by shared 13-grams
(``harness.evaluation.contamination``). Scores recorded before it were never measured: they read
None, which the listings show as unknown, not as clean.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("contamination", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("contamination")
