"""Alembic migrations of the leaderboard on SQLite and PostgreSQL: the revisions build exactly the
models' tables, older revisions are backed up first and upgraded with nothing lost (a server only by
`harness db upgrade`), and databases this release must not touch are refused untouched."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from typer.testing import CliRunner

from harness.cli import app
from leaderboard import migrations
from leaderboard.database import locate
from leaderboard.schema import Base
from leaderboard.store import LeaderboardError, open_store, upgrade_store
from tests.conftest import db_rows

LLAMA2_7B_PARAMETERS = 6_738_415_616  # beyond PostgreSQL's INTEGER (2^31 - 1)
H200_BYTES = 141 * 2**30


def _differences(db: str) -> list:
    engine = create_engine(locate(db).url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def _downgraded(db: str, revision: str) -> dict[str, set[str]]:
    """Downgrade ``db`` to ``revision``; its tables and their columns then."""
    from sqlalchemy import inspect

    engine = create_engine(locate(db).url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrations._config(conn), revision)
            return {
                table: {c["name"] for c in inspect(conn).get_columns(table)}
                for table in inspect(conn).get_table_names()
            }
    finally:
        engine.dispose()


def _run(store, method="m") -> int:
    return store.start_run(
        method=method,
        backbone="b",
        task_spec="t",
        task_names=["A"],
        config={},
        config_hash="h",
        seed=0,
        environment={},
    )


def test_the_revisions_build_exactly_the_models_tables(any_db):
    open_store(any_db).close()
    assert _differences(any_db) == []
    assert db_rows(any_db, "SELECT version_num FROM alembic_version") == [(migrations.head(),)]


def test_counts_beyond_32_bits_are_recorded(any_db):
    store = open_store(any_db)
    run_id = _run(store)
    store.record_model(
        run_id, n_parameters=LLAMA2_7B_PARAMETERS, trainable_parameters=LLAMA2_7B_PARAMETERS, embed_dim=4096
    )
    store.record_timing(run_id, phase="train:ic", seconds=1.0, tokens=3 * 2**31, peak_memory_bytes=H200_BYTES)
    record = store.get_run(run_id)
    assert record["n_parameters"] == LLAMA2_7B_PARAMETERS
    assert record["timings"][0]["peak_memory_bytes"] == H200_BYTES and record["timings"][0]["tokens"] == 3 * 2**31


def _at_revision(db: str, revision: str) -> None:
    engine = create_engine(locate(db).url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrations._config(conn), revision)
    finally:
        engine.dispose()


def _upgraded(db: str):
    """``harness db upgrade``, then the store."""
    upgrade_store(db)
    return open_store(db)


def test_an_older_revision_on_a_server_is_upgraded_only_when_asked_and_backed_up(postgres_url):
    _at_revision(postgres_url, migrations.BASELINE)
    for refused in ({}, {"read_only": True}):  # a command that records, and a read
        with pytest.raises(LeaderboardError, match="harness db upgrade"):
            open_store(postgres_url, **refused)
    assert db_rows(postgres_url, "SELECT version_num FROM alembic_version") == [(migrations.BASELINE,)]
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", postgres_url])
    assert result.exit_code == 0 and f"from schema revision {migrations.BASELINE}" in result.output, result.output
    assert db_rows(postgres_url, "SELECT version_num FROM alembic_version") == [(migrations.head(),)]
    (schema,) = db_rows(
        postgres_url, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'harness_backup_%'"
    )
    assert schema[0].startswith(f"harness_backup_{migrations.BASELINE}_")
    assert db_rows(postgres_url, f'SELECT version_num FROM "{schema[0]}".alembic_version') == [(migrations.BASELINE,)]
    assert _differences(postgres_url) == []


def test_an_older_revision_in_a_file_is_backed_up_then_upgraded(tmp_path):
    path = tmp_path / "h.db"
    _at_revision(str(path), migrations.BASELINE)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.ALEMBIC_USER_VERSION}")
    open_store(path).close()  # a command that records upgrades a local file itself
    assert (tmp_path / f"h.db.rev{migrations.BASELINE}.bak").exists() and _differences(str(path)) == []
    again = CliRunner().invoke(app, ["db", "upgrade", "--db", str(path)])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_a_newer_or_foreign_server_database_is_refused_untouched(postgres_url):
    open_store(postgres_url).close()
    with create_engine(locate(postgres_url).url).begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(LeaderboardError, match="newer harness"):
        open_store(postgres_url)
    assert db_rows(postgres_url, "SELECT version_num FROM alembic_version") == [("9999",)]
    with create_engine(locate(postgres_url).url).begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    with pytest.raises(LeaderboardError, match="not made by the harness"):
        open_store(postgres_url)


def test_reading_an_empty_server_creates_nothing(postgres_url):
    result = CliRunner().invoke(app, ["runs", "--db", postgres_url])
    assert result.exit_code == 0 and "No leaderboard at" in result.output
    assert db_rows(postgres_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [
        (0,)
    ]


@pytest.mark.parametrize(
    "db,message",
    [
        ("mysql://user@host/db", "records into SQLite or PostgreSQL"),
        ("sqlite://", "in-memory database keeps nothing"),
        ("postgresql://user:secret@127.0.0.1:1/none", "cannot be opened as a database"),
    ],
)
def test_a_database_url_that_cannot_be_used_is_exit_2_without_its_password(db, message):
    result = CliRunner().invoke(app, ["runs", "--db", db])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "secret" not in result.output


def test_an_emptied_file_keeps_retiring_the_ids_it_gave(tmp_path):
    """Every run deleted before an upgrade that rebuilds tables: the rebuilt, empty tables still
    count on from there."""
    path = tmp_path / "emptied.db"
    _at_revision(str(path), migrations.BASELINE)
    with sqlite3.connect(path) as conn:
        for run_id in (1, 2):
            conn.execute(
                "INSERT INTO runs (id, uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, "
                "versions, hardware, host, pid, started_at, heartbeat_at) VALUES "
                f"({run_id}, 'u{run_id}', 'finished', 'm', 'b', 't', '[]', '{{}}', 'h', 0, '{{}}', '{{}}', 'host', 1, 0, 0)"
            )
        conn.execute("DELETE FROM runs")
    assert _run(_upgraded(str(path))) == 3


def test_scores_recover_their_task_version_when_upgraded(any_db):
    """Revision 0004: from the kept TaskResult, else the recorded task file's sha256, else unknown."""
    import json

    _at_revision(any_db, "0003")
    engine = create_engine(locate(any_db).url)
    config = {"tasks_resolved": [{"name": "file-task", "kind": "file", "sha256": "ab" * 32}]}
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (id, uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, versions, "
            "hardware, host, pid, started_at, heartbeat_at) VALUES (1, 'u1', 'finished', 'm', 'b', 't', '[]', "
            f"'{json.dumps(config)}', 'h', 0, '{{}}', '{{}}', 'host', 1, 0, 0)"
        )
        for task, result in (
            ("mteb-task", {"dataset_revision": "rev123", "task_name": "mteb-task"}),
            ("file-task", None),
            ("lost", None),
        ):
            kept = "NULL" if result is None else f"'{json.dumps(result)}'"
            conn.exec_driver_sql(
                "INSERT INTO scores (run_id, task, main_metric, main_score, details, task_result) "
                f"VALUES (1, '{task}', 'm', 0.5, '{{}}', {kept})"
            )
    engine.dispose()
    _upgraded(any_db).close()
    versions = dict(db_rows(any_db, "SELECT task, task_version FROM scores"))
    assert versions == {"mteb-task": "rev123", "file-task": "ab" * 6, "lost": None}
    assert _differences(any_db) == []


def test_scores_recover_their_task_type_when_upgraded(any_db):
    """Revision 0005: only what the run's recorded config says for certain; never from the metric."""
    import json

    _at_revision(any_db, "0004")
    sts_file, other_file = "ab" * 32, "cd" * 32
    config = {
        "tasks_resolved": [
            {"name": "LeeDocSimilarity", "kind": "offline"},
            {"name": "sts-file", "kind": "file", "path": "sts-file.tsv", "sha256": sts_file, "pairs": 9},
            {"name": "quick", "kind": "file", "path": "quick.tsv", "sha256": sts_file, "pairs": 9},
            {
                "name": "msrp",
                "kind": "file",
                "path": "msrp.tsv",
                "sha256": other_file,
                "type": "PairClassification",
                "items": 9,
            },
            {"name": "replaced", "kind": "file", "path": "replaced.tsv", "sha256": sts_file, "pairs": 9},
            {"name": "STS12", "kind": "mteb"},
        ]
    }
    scores = [  # (run, task, task_version)
        (1, "LeeDocSimilarity", "gensim-4.4"),
        (1, "sts-file", sts_file[:12]),
        (1, "quick", f"{sts_file[:12]}+first6"),
        (1, "msrp", None),
        (1, "replaced", other_file[:12]),
        (1, "STS12", "rev12"),
        (1, "evaluated-later", None),
        (2, "LeeDocSimilarity", None),  # run 2 recorded no tasks_resolved: its own config says nothing
    ]
    engine = create_engine(locate(any_db).url)
    with engine.begin() as conn:
        for run_id, recorded in ((1, config), (2, {})):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, versions, "
                f"hardware, host, pid, started_at, heartbeat_at) VALUES ({run_id}, 'u{run_id}', 'finished', 'm', 'b', 't', '[]', "
                f"'{json.dumps(recorded)}', 'h', 0, '{{}}', '{{}}', 'host', 1, 0, 0)"
            )
        for run_id, task, version in scores:
            conn.exec_driver_sql(
                "INSERT INTO scores (run_id, task, task_version, main_metric, main_score, details) VALUES "
                f"({run_id}, '{task}', {'NULL' if version is None else repr(version)}, 'cosine_spearman', 0.5, '{{}}')"
            )
    engine.dispose()
    _upgraded(any_db).close()
    types = {(run, task): kind for run, task, kind in db_rows(any_db, "SELECT run_id, task, task_type FROM scores")}
    assert types == {
        (1, "LeeDocSimilarity"): "STS",
        (1, "sts-file"): "STS",
        (1, "quick"): "STS",
        (1, "msrp"): "PairClassification",
        (1, "replaced"): None,
        (1, "STS12"): None,
        (1, "evaluated-later"): None,
        (2, "LeeDocSimilarity"): None,
    }
    assert _differences(any_db) == []

    assert "task_type" not in _downgraded(any_db, "0004")["scores"]
    assert db_rows(any_db, "SELECT count(*) FROM scores") == [(len(scores),)]


def test_dev_scores_arrive_as_a_table_of_their_own_and_go_with_their_run(any_db):
    """Revision 0006: a new table; the runs before it keep every row, a dev evaluation replaces
    itself, deleting the run deletes its dev scores, and the downgrade drops the table alone."""

    _at_revision(any_db, "0005")
    engine = create_engine(locate(any_db).url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, versions, "
            "hardware, host, pid, started_at, heartbeat_at) VALUES ('u1', 'finished', 'm', 'b', 't', '[]', '{}', 'h', 0, "
            "'{}', '{}', 'host', 1, 0, 0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO scores (run_id, task, main_metric, main_score, details) VALUES (1, 'A', 'm', 0.5, '{}')"
        )
    engine.dispose()
    store = _upgraded(any_db)
    assert _differences(any_db) == [] and store.get_run(1)["scores"] == {"A": 0.5}
    run_id = _run(store)
    store.record_dev_scores(
        run_id, "ic", 10, [{"task": "dev", "main_metric": "cosine_spearman", "score": 0.25, "seconds": 1.5}]
    )
    store.record_dev_scores(
        run_id, "ic", 10, [{"task": "dev", "main_metric": "cosine_spearman", "score": 0.75, "seconds": 2.0}]
    )
    store.record_dev_scores(
        run_id, "cda", 10, [{"task": "dev", "main_metric": "cosine_spearman", "score": 0.5, "seconds": 1.0}]
    )
    assert [(d["stage"], d["step"], d["score"], d["seconds"]) for d in store.dev_scores(run_id)] == [
        ("ic", 10, 0.75, 2.0),
        ("cda", 10, 0.5, 1.0),
    ]
    assert store.get_run(run_id)["scores"] == {}  # never a test score
    store.finish_run(run_id)
    store.delete_run(run_id)
    assert db_rows(any_db, "SELECT count(*) FROM dev_scores") == [(0,)]
    store.close()

    assert "dev_scores" not in _downgraded(any_db, "0005")
    assert db_rows(any_db, "SELECT count(*) FROM scores") == [(1,)]


def _one_scored_run(db: str) -> None:
    """Run 1 with one score (task T, 0.5), written by plain SQL into a database at an older revision."""
    engine = create_engine(locate(db).url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (id, uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, versions, "
            "hardware, host, pid, started_at, heartbeat_at) VALUES (1, 'u1', 'finished', 'm', 'b', 't', '[]', '{}', 'h', 0, "
            "'{}', '{}', 'host', 1, 0, 0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO scores (run_id, task, main_metric, main_score, details) VALUES (1, 'T', 'm', 0.5, '{}')"
        )
    engine.dispose()


def test_scores_from_before_per_item_results_keep_none_when_upgraded(any_db):
    """Revision 0007: a new nullable column; old rows cannot recover items (the vectors are gone)."""

    _at_revision(any_db, "0006")
    _one_scored_run(any_db)
    store = _upgraded(any_db)
    assert store.score_items([1]) == {1: {"T": None}}
    store.close()
    assert _differences(any_db) == []
    assert "items" not in _downgraded(any_db, "0006")["scores"]
    assert db_rows(any_db, "SELECT main_score FROM scores") == [(0.5,)]


def test_scores_from_before_dims_are_whole_vector_scores_when_upgraded(any_db):
    """Revision 0008: every existing score is of the whole vector (dim 0); a task may then hold a
    score per dim, and going back keeps the whole-vector ones."""
    _at_revision(any_db, "0007")
    _one_scored_run(any_db)
    store = _upgraded(any_db)
    assert store.get_run(1)["scores"] == {"T": 0.5} and store.score_dims(1) == [0]
    store.record_score(1, task="T", main_metric="m", main_score=0.25, details={}, dim=8)
    assert store.runs(ids=[1], dim=8)[0]["scores"] == {"T": 0.25} and store.get_run(1)["scores"] == {"T": 0.5}
    store.close()
    assert _differences(any_db) == []
    assert "dim" not in _downgraded(any_db, "0007")["scores"]
    assert db_rows(any_db, "SELECT main_score FROM scores") == [(0.5,)]


def test_scores_from_before_contamination_read_unmeasured_when_upgraded(any_db):
    """Revision 0009: old scores were never measured for overlap (None, not zero); a new score
    keeps what was measured, and going back drops the column and keeps the score."""
    _at_revision(any_db, "0008")
    _one_scored_run(any_db)
    store = _upgraded(any_db)
    assert store.get_run(1)["score_details"][0]["contamination"] is None
    measured = {"texts": 4, "exact_texts": 1, "exact": 0.25}
    store.record_score(1, task="U", main_metric="m", main_score=0.75, details={}, contamination=measured)
    assert [s["contamination"] for s in store.get_run(1)["score_details"]] == [None, measured]
    store.close()
    assert _differences(any_db) == []
    assert "contamination" not in _downgraded(any_db, "0008")["scores"]
    assert sorted(db_rows(any_db, "SELECT main_score FROM scores")) == [(0.5,), (0.75,)]


#: what a version-1 recorded config left out (written out here, not taken from the revision)
V1_LEFT_OUT_RUN = ("limit", "instructions", "dev_tasks", "dims", "repeats", "attention", "config_version")
V1_LEFT_OUT_OPTIONS = {
    "infonce": (
        "eval_every",
        "keep_best",
        "dropout",
        "hidden_dropout",
        "hard_negatives",
        "mini_batch",
        "query_negatives",
        "document_negatives",
        "false_negative_margin",
        "symmetric",
        "matryoshka_dims",
        "matryoshka_weights",
    ),
    "untrained-mean": ("pool_text_only",),
}


def _v1_hash(config: dict) -> str:
    import hashlib
    import json

    material = {k: v for k, v in config.items() if k not in ("seed", "dims", "repeats")}
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_configs_from_before_config_versions_hash_as_the_same_config_does_now(any_db, tiny_llama_dir, small_sts_file):
    """Revision 0010: a version-1 config gets the options it left out, its evaluation batch size
    under its new name, and the hash this code gives the same run; a plug-in's options stay as
    recorded; going back restores both."""
    import json

    from harness.config import RunConfig, config_hash
    from harness.runs.plan import plan_run

    now = {
        name: plan_run(RunConfig(method=name, backbone=str(tiny_llama_dir), tasks=[str(small_sts_file)])).resolved()
        for name in V1_LEFT_OUT_OPTIONS
    }
    assert all(now[name]["config_version"] == 2 for name in now)
    before = {}
    for name, config in now.items():
        old = {
            ("batch_size" if k == "eval_batch_size" else k): v for k, v in config.items() if k not in V1_LEFT_OUT_RUN
        }
        old["method_args"] = {k: v for k, v in config["method_args"].items() if k not in V1_LEFT_OUT_OPTIONS[name]}
        before[name] = old
    before["my-plugin"] = {"method": "my-plugin", "method_args": {"x": 1}, "seed": 0}
    _at_revision(any_db, "0009")
    engine = create_engine(locate(any_db).url)
    with engine.begin() as conn:
        for run_id, (name, config) in enumerate(before.items(), start=1):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, uuid, status, method, backbone, task_spec, task_names, config, config_hash, seed, versions, "
                f"hardware, host, pid, started_at, heartbeat_at) VALUES ({run_id}, 'u{run_id}', 'finished', '{name}', 'b', 't', "
                f"'[]', '{json.dumps(config)}', '{_v1_hash(config)}', 0, '{{}}', '{{}}', 'host', 1, 0, 0)"
            )
    engine.dispose()
    store = _upgraded(any_db)
    for run_id, name in enumerate(now, start=1):
        record = store.get_run(run_id)
        assert record["config"] == now[name] and record["config_hash"] == config_hash(now[name])
    plugin = store.get_run(3)["config"]
    assert plugin["method_args"] == {"x": 1} and plugin["config_version"] == 2 and plugin["attention"] == "causal"
    store.close()
    assert _differences(any_db) == []

    _downgraded(any_db, "0009")
    for run_id, config in enumerate(before.values(), start=1):
        ((recorded, digest),) = db_rows(any_db, f"SELECT config, config_hash FROM runs WHERE id = {run_id}")
        assert (json.loads(recorded) if isinstance(recorded, str) else recorded) == config and digest == _v1_hash(
            config
        )
