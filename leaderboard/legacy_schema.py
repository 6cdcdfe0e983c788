"""The leaderboard's schema versions before Alembic, kept to upgrade old SQLite files.

Releases up to schema v5 numbered the schema in SQLite's ``PRAGMA user_version`` and upgraded a
file by these frozen DDL steps (never generated from the current models). A file still at v1-v4
is brought to v5 by them; v5 is Alembic's baseline revision, from which Alembic takes over.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status VARCHAR(16) NOT NULL,
    error TEXT,
    method VARCHAR(128) NOT NULL,
    backbone VARCHAR(256) NOT NULL,
    task_spec VARCHAR(512) NOT NULL,
    task_names JSON NOT NULL,
    config JSON NOT NULL,
    config_hash VARCHAR(64) NOT NULL,
    seed INTEGER NOT NULL,
    git_sha VARCHAR(40),
    git_dirty BOOLEAN,
    versions JSON NOT NULL,
    hardware JSON NOT NULL,
    host VARCHAR(256) NOT NULL,
    pid INTEGER NOT NULL,
    started_at FLOAT NOT NULL,
    heartbeat_at FLOAT NOT NULL,
    ended_at FLOAT
);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_runs_method ON runs (method);
CREATE INDEX ix_runs_backbone ON runs (backbone);
CREATE INDEX ix_runs_config_hash ON runs (config_hash);
CREATE TABLE scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task VARCHAR(256) NOT NULL,
    main_metric VARCHAR(64) NOT NULL,
    main_score FLOAT NOT NULL,
    details JSON NOT NULL
);
CREATE UNIQUE INDEX ix_scores_run_task ON scores (run_id, task);
CREATE INDEX ix_scores_task ON scores (task);
CREATE TABLE timings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    phase VARCHAR(256) NOT NULL,
    seconds FLOAT NOT NULL,
    items INTEGER,
    tokens INTEGER,
    peak_memory_bytes INTEGER
);
CREATE INDEX ix_timings_run_id ON timings (run_id);
"""

_V2 = """
ALTER TABLE runs ADD COLUMN output_dir VARCHAR(1024);
ALTER TABLE timings ADD COLUMN details JSON;
CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage VARCHAR(64) NOT NULL,
    step INTEGER NOT NULL,
    loss FLOAT NOT NULL,
    lr FLOAT NOT NULL,
    seconds FLOAT NOT NULL
);
CREATE UNIQUE INDEX ix_metrics_run_stage_step ON metrics (run_id, stage, step);
"""

# v3: a run identity (uuid) that names the run's output folder, so run ids that restart in a new
# database never meet another database's checkpoints (existing rows get a fresh random one); and
# the diagnostics a stage measures when it ends (e.g. AutoRegEmbed's held-out IC losses).
_V3 = """
ALTER TABLE runs ADD COLUMN uuid VARCHAR(32);
UPDATE runs SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
CREATE UNIQUE INDEX ix_runs_uuid ON runs (uuid);
CREATE TABLE diagnostics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage VARCHAR(64) NOT NULL,
    name VARCHAR(128) NOT NULL,
    value FLOAT NOT NULL
);
CREATE UNIQUE INDEX ix_diagnostics_run_stage_name ON diagnostics (run_id, stage, name);
"""

# v4: what charts and exports need to know of the model: its parameters (all of the model that
# encodes, adapters and a method's own parameters included), those trained, and the embedding size.
_V4 = """
ALTER TABLE runs ADD COLUMN n_parameters INTEGER;
ALTER TABLE runs ADD COLUMN trainable_parameters INTEGER;
ALTER TABLE runs ADD COLUMN embed_dim INTEGER;
"""

# v5: mteb's whole TaskResult of each evaluation (dataset revision, mteb version, evaluation time,
# every score), so results can be exported in mteb's own layout; empty for earlier rows.
_V5 = """
ALTER TABLE scores ADD COLUMN task_result JSON;
"""

Migration = Callable[[sqlite3.Connection], None]


def _script(ddl: str) -> Migration:
    def run(conn: sqlite3.Connection) -> None:
        for statement in ddl.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


# STEPS[i] upgrades version i to i + 1. v2: per-step training metrics, timing details
# (throughput, batch sizes, world size) and each run's output folder (checkpoints). v3: run uuid,
# stage diagnostics. v4: parameter counts and embedding size. v5: mteb TaskResults.
STEPS: list[Migration] = [_script(_V1), _script(_V2), _script(_V3), _script(_V4), _script(_V5)]
FINAL_VERSION = len(STEPS)  # the last version before Alembic: its baseline revision
