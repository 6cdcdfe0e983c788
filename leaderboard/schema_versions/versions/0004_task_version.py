"""A task is its content: every score keeps the version of the data it was computed on.

Revision ID: 0004
Revises: 0003
Two task files with one stem are different tasks. The version is mteb's dataset revision of the
task (for a task file, the first 12 hex digits of the file's sha256; for an mteb task, its
dataset revision), with the evaluated subsets after a colon where a task was limited to some.
Existing rows recover it from the mteb TaskResult they kept (``dataset_revision``), else from the
run's recorded config (a task file's sha256); otherwise it stays NULL, shown as unknown.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def _recovered(task: str, task_result, config) -> str | None:
    result = _loaded(task_result)
    if isinstance(result, dict) and result.get("dataset_revision"):
        return str(result["dataset_revision"])
    for spec in (_loaded(config) or {}).get("tasks_resolved") or []:
        if isinstance(spec, dict) and spec.get("name") == task and spec.get("sha256"):
            return str(spec["sha256"])[:12]
    return None


def upgrade() -> None:
    op.add_column("scores", sa.Column("task_version", sa.String(256), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT s.id, s.task, s.task_result, r.config FROM scores s JOIN runs r ON r.id = s.run_id")
    ).all()
    for score_id, task, task_result, config in rows:
        version = _recovered(task, task_result, config)
        if version is not None:
            bind.execute(sa.text("UPDATE scores SET task_version = :v WHERE id = :i"), {"v": version, "i": score_id})


def downgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("task_version")
