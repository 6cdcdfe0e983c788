"""Every score keeps its task's type, so comparisons can show MTEB's mean per task type.

Revision ID: 0005
Revises: 0004
The type is mteb's ``task.metadata.type`` (STS, Retrieval, Reranking, PairClassification, ...).
Existing rows recover it only where the run's recorded config says it for certain (its
``tasks_resolved`` entry of that name): an offline task is STS; a task file names its ``type``, or
is an STS file (an entry with ``pairs``), provided the score was computed on that file (a version
of another file under the same name, from ``harness eval --force``, is not). Anything else (an
mteb task, a task the config does not name) stays NULL, shown as unknown: a type is never guessed
from the metric's name.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def _entries(config) -> dict:
    """The run's ``tasks_resolved`` entries by task name."""
    specs = (_loaded(config) or {}).get("tasks_resolved") or []
    return {spec["name"]: spec for spec in specs if isinstance(spec, dict) and "name" in spec}


def _recovered(spec: dict | None, version: str | None) -> str | None:
    if spec is None:
        return None
    if spec.get("kind") == "offline":
        return "STS"
    if spec.get("kind") != "file":
        return None
    if version is not None and spec.get("sha256") and not version.startswith(str(spec["sha256"])[:12]):
        return None  # the score was computed on another file under this name
    if spec.get("type"):
        return str(spec["type"])
    return "STS" if "pairs" in spec else None


def upgrade() -> None:
    op.add_column("scores", sa.Column("task_type", sa.String(64), nullable=True))
    bind = op.get_bind()
    configs = {run_id: _entries(config) for run_id, config in bind.execute(sa.text("SELECT id, config FROM runs"))}
    rows = bind.execute(sa.text("SELECT id, run_id, task, task_version FROM scores")).all()
    found = [
        {"t": kind, "i": score_id}
        for score_id, run_id, task, version in rows
        if (kind := _recovered(configs.get(run_id, {}).get(task), version)) is not None
    ]
    if found:
        bind.execute(sa.text("UPDATE scores SET task_type = :t WHERE id = :i"), found)


def downgrade() -> None:
    with op.batch_alter_table("scores", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("task_type")
