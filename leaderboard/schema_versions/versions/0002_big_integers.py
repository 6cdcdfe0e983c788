"""Counts that outgrow 32 bits: parameters of a 7B model, a GPU's peak memory in bytes, tokens.

Revision ID: 0002
Revises: 0001
SQLite stores any integer in these columns already; PostgreSQL's INTEGER stops at 2^31 - 1, so a
7B backbone's n_parameters or 80 GB of peak memory could not be recorded there. On SQLite, batch
mode rebuilds the two tables (the harness runs migrations with foreign keys off, so dropping the
old ``runs`` table cascades nothing).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WIDENED = {"runs": ("n_parameters", "trainable_parameters"), "timings": ("tokens", "peak_memory_bytes")}


def upgrade() -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer, type_=sa.BigInteger, existing_nullable=True)


def downgrade() -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table, table_kwargs={"sqlite_autoincrement": True}) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.BigInteger, type_=sa.Integer, existing_nullable=True)
