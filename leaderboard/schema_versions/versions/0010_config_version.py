"""Recorded configs carry a version, and every option in them is hashed.

Revision ID: 0010
Revises: 0009
Until now a run's recorded config left out options that held their "off" value (options added
after runs had been recorded: so a run without them kept its hash) and some run options while
empty. From config version 2 every option is recorded and hashed. This revision rewrites each
existing run's config as version 2 would have recorded it (the left-out values filled in, exactly
those the code dropped), renames the evaluation's ``batch_size`` to ``eval_batch_size``
(``method_args.batch_size`` is the training's) and recomputes its hash, so that runs from before
compare and rank with runs after it where their configs agree. The values below are frozen here as
they were when this revision was written: a migration never imports the code whose history it rewrites. A plug-in
method's own options are not known here: its runs get the run options filled in, their
``method_args`` as recorded (a plug-in that left options out keeps those runs apart from later
ones, never with the wrong runs). The downgrade removes the same values again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

VERSION = 2
_TRAINED = {"eval_every": None, "keep_best": False, "dropout": 0.0, "hidden_dropout": 0.0}
_CONTRASTIVE = {
    **_TRAINED,
    "hard_negatives": True,
    "mini_batch": 0,
    "query_negatives": False,
    "document_negatives": False,
    "false_negative_margin": None,
    "symmetric": False,
    "matryoshka_dims": [],
    "matryoshka_weights": [],
}
#: per built-in method, the options its recorded config left out while they held these values
LEFT_OUT_OPTIONS: dict[str, dict[str, Any]] = {
    "autoregembed": _TRAINED,
    "infonce": _CONTRASTIVE,
    "llm2vec": _CONTRASTIVE,
    "nv-embed": _CONTRASTIVE,
    "untrained-mean": {"pool_text_only": False},
    "untrained-last": {"pool_text_only": False},
    "echo": {},
    "prompteol": {},
    "token-prepending": {},
}
#: run options left out while empty (attention: while causal)
LEFT_OUT_RUN: dict[str, Any] = {
    "limit": None,
    "instructions": False,
    "dev_tasks": [],
    "dims": [],
    "repeats": None,
    "attention": "causal",
}
#: run options renamed in version 2: the evaluation's batch size no longer shares the training's name
RENAMED = {"batch_size": "eval_batch_size"}
UNHASHED = ("seed", "dims", "repeats")  # as harness.config.UNHASHED: recorded, not hashed

runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("config", sa.JSON), sa.column("config_hash", sa.String))


def digest(config: dict[str, Any]) -> str:
    material = {k: v for k, v in config.items() if k not in UNHASHED}
    return hashlib.sha256(
        json.dumps(material, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _known(config: Any) -> bool:
    """A harness run config (other rows are left as they are)."""
    return (
        isinstance(config, dict)
        and isinstance(config.get("method_args"), dict)
        and isinstance(config.get("method"), str)
    )


def as_version_2(config: dict[str, Any]) -> dict[str, Any]:
    config = {(RENAMED.get(k, k)): v for k, v in config.items()}
    new = {**{k: v for k, v in LEFT_OUT_RUN.items() if k not in config}, **config, "config_version": VERSION}
    left_out = LEFT_OUT_OPTIONS.get(config["method"], {})
    new["method_args"] = {
        **{k: v for k, v in left_out.items() if k not in config["method_args"]},
        **config["method_args"],
    }
    return new


def as_version_1(config: dict[str, Any]) -> dict[str, Any]:
    back = {new: old for old, new in RENAMED.items()}
    old = {
        back.get(k, k): v
        for k, v in config.items()
        if k != "config_version" and not (k in LEFT_OUT_RUN and v == LEFT_OUT_RUN[k])
    }
    left_out = LEFT_OUT_OPTIONS.get(config["method"], {})
    old["method_args"] = {k: v for k, v in config["method_args"].items() if not (k in left_out and v == left_out[k])}
    return old


def _rewrite(change, wanted) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # no older harness inserts a row this rewrite would miss
        bind.execute(sa.text("LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE"))
    for run_id, config in bind.execute(sa.select(runs.c.id, runs.c.config)).all():
        if _known(config) and wanted(config):
            new = change(config)
            bind.execute(runs.update().where(runs.c.id == run_id).values(config=new, config_hash=digest(new)))


def upgrade() -> None:
    _rewrite(as_version_2, lambda config: "config_version" not in config)


def downgrade() -> None:
    _rewrite(as_version_1, lambda config: config.get("config_version") == VERSION)
