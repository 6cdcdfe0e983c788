"""Alembic's entry point: migrations run on the connection the harness opened and locked
(``config.attributes["connection"]``), inside its transaction; SQLite alters tables in batch mode."""

from alembic import context

from leaderboard.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
