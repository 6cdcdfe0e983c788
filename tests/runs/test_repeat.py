"""`harness run --like N` (a run again from its record) and `--seeds` (one config per seed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.training_fixtures import TRIPLETS

runner = CliRunner()


def _run(db, *args):
    return runner.invoke(app, ["run", *args, "--db", str(db)])


@pytest.fixture
def untrained(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    result = _run(db, "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", str(small_sts_file))
    assert result.exit_code == 0, result.output
    return db


def test_like_gives_identical_scores_and_records_what_it_repeats(untrained):
    result = _run(untrained, "--like", "1")
    assert result.exit_code == 0, result.output
    assert (
        "Run #2 repeats run #1: its scores agree within their paired 95% intervals on 1 shared task(s) (identical)"
        in " ".join(result.output.split())
    )
    store = open_store(untrained)
    first, again = store.get_run(1), store.get_run(2)
    assert again["scores"] == first["scores"] and again["config_hash"] == first["config_hash"]
    assert again["config"]["repeats"] == 1 and first["config"]["repeats"] is None
    assert {k: v for k, v in again["config"].items() if k != "repeats"} == {
        k: v for k, v in first["config"].items() if k != "repeats"
    }
    compared = runner.invoke(app, ["compare", "1", "2", "--db", str(untrained)]).output
    assert "Run #2 repeats run #1" in " ".join(compared.split())


def test_like_varies_what_it_is_told_and_nothing_else(untrained):
    result = _run(untrained, "--like", "1", "--seed", "5", "--set", "method_args.template='q : {text}'")
    assert result.exit_code == 0, result.output
    store = open_store(untrained)
    first, again = store.get_run(1)["config"], store.get_run(2)["config"]
    assert again["seed"] == 5 and again["method_args"]["template"] == "q : {text}"
    assert {k: v for k, v in again.items() if k not in ("seed", "method_args", "repeats")} == {
        k: v for k, v in first.items() if k not in ("seed", "method_args", "repeats")
    }


def test_like_refuses_a_changed_task_file_and_other_run_options(untrained, small_sts_file):
    small_sts_file.write_text(small_sts_file.read_text().replace("4.8", "4.7"))
    changed = _run(untrained, "--like", "1")
    assert changed.exit_code == 2 and f"task file {small_sts_file} changed since run 1" in " ".join(
        changed.output.split()
    )
    other = _run(untrained, "--like", "1", "--method", "infonce")
    assert other.exit_code == 2 and "--method would change it" in other.output
    assert len(open_store(untrained).runs(statuses=None)) == 1  # nothing recorded


def test_like_refuses_a_changed_training_file(tmp_path, tiny_llama_dir, small_sts_file):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    db = tmp_path / "h.db"
    args = [
        "--method",
        "infonce",
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(small_sts_file),
        "--train-data",
        str(triplets),
        "--set",
        "method_args.steps=1",
        "--set",
        "method_args.batch_size=2",
        "--output-dir",
        str(tmp_path / "runs"),
    ]
    assert _run(db, *args).exit_code == 0
    triplets.write_text(triplets.read_text() + json.dumps({"anchor": "a", "positive": "b", "negative": "c"}) + "\n")
    result = runner.invoke(app, ["run", "--like", "1", "--db", str(db), "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and f"training file {triplets} changed" in " ".join(result.output.split())
    assert len(open_store(db).runs(statuses=None)) == 1


def test_seeds_run_one_config_per_seed(untrained):
    result = _run(untrained, "--like", "1", "--seeds", "1,2")
    assert result.exit_code == 0, result.output
    runs = open_store(untrained).runs(statuses=None, newest_first=False)
    assert [open_store(untrained).get_run(r["run_id"])["seed"] for r in runs] == [0, 1, 2]
    assert len({r["config_hash"] for r in runs}) == 1  # one config, three seeds: --by-config groups them
    for bad, message in (
        (["--seeds", "1,1"], "give distinct seeds"),
        (["--seeds", "1,x"], "is not a whole number"),
        (["--seed", "3", "--seeds", "1,2"], "give one of them"),
    ):
        refused = _run(untrained, "--like", "1", *bad)
        assert refused.exit_code == 2 and message in refused.output, refused.output
    assert len(open_store(untrained).runs(statuses=None)) == 3


def test_like_refuses_a_config_this_code_resolves_differently(untrained):
    import sqlite3

    with sqlite3.connect(untrained) as conn:  # as if the code had resolved something else when run 1 was recorded
        (config,) = conn.execute("SELECT config FROM runs WHERE id = 1").fetchone()
        config = json.loads(config)
        config["backbone_resolved"]["kind"] = "hub"
        conn.execute("UPDATE runs SET config = ? WHERE id = 1", (json.dumps(config),))
    result = _run(untrained, "--like", "1")
    assert (
        result.exit_code == 2
        and "resolves run 1's config differently (backbone_resolved.kind: 'hub' then"
        in " ".join(result.output.split())
    )
    assert len(open_store(untrained).runs(statuses=None)) == 1


def test_seeds_group_as_one_config_in_compare(untrained):
    from harness.config import UNHASHED
    from leaderboard.queries import UNGROUPED

    assert set(UNGROUPED) == set(UNHASHED)
    assert _run(untrained, "--like", "1", "--seeds", "1,2", "--dims", "4").exit_code == 0
    groups = json.loads(
        runner.invoke(app, ["compare", "1", "2", "3", "--by-config", "--json", "--db", str(untrained)]).stdout
    )
    assert [group["run_ids"] for group in groups] == [[1, 2, 3]]
    refused = _run(untrained, "--like", "1", "--seeds", "0,4294967296")
    assert refused.exit_code == 2 and "seed" in refused.output and "Traceback" not in refused.output
