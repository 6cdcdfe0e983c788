"""Dev never touches test: `NAME:split` chooses an mteb task's split, `--dev-tasks` evaluates a
task's validation or dev split and refuses a test split (tasks built in code, no hub)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.training_fixtures import TRIPLETS

PAIRS = {
    "train": [
        ("the man read a book", "the woman wrote a letter", 1.9),
        ("the car drove down the road", "a car drove down a road", 4.9),
    ],
    "test": [
        ("the cat sat on the mat", "a cat sat on a mat", 4.8),
        ("the sun shines", "rain falls", 0.8),
        ("the man ate food", "the woman drank water", 1.2),
        ("the dog ran in the park", "a dog ran in a park", 4.5),
    ],
    "validation": [
        ("the bird flew over the house", "a bird flew over a house", 4.6),
        ("the sky is blue", "the grass is green", 1.5),
        ("quick brown fox jumps", "lazy dog sat", 0.5),
        ("the cat ran", "the dog ran", 2.7),
    ],
}


def _toy_task(name: str, splits: tuple[str, ...]):
    from datasets import Dataset, DatasetDict

    from harness.evaluation.local_tasks import About, sts_task

    task = sts_task(About(name, "STS", "a task built in code", "toy-rev"), ([], [], []), (0.0, 5.0))

    def load_data(self, num_proc=None, **kwargs):
        self.dataset = DatasetDict(
            {
                split: Dataset.from_dict(
                    {
                        "sentence1": [a for a, _, _ in PAIRS[split]],
                        "sentence2": [b for _, b, _ in PAIRS[split]],
                        "score": [s for _, _, s in PAIRS[split]],
                    }
                )
                for split in splits
            }
        )
        self.data_loaded = True

    type(task).load_data = load_data
    return task


@pytest.fixture
def toy_tasks(monkeypatch):
    import mteb

    from harness.evaluation import tasks

    made = {"ToyTestOnly": ("test",), "ToyWithValidation": ("train", "validation", "test")}

    def get_task(name, hf_subsets=None, eval_splits=None, **kwargs):
        task = _toy_task(name, made[name])
        return task.filter_eval_splits(eval_splits) if eval_splits else task

    monkeypatch.setattr(mteb, "get_task", get_task)
    monkeypatch.setattr(tasks, "_mteb_task_exists", lambda name: name in made)
    return made


def _run(tmp_path, tiny_llama_dir, small_sts_file, *extra):
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    args = [
        "run",
        "--method",
        "infonce",
        "--backbone",
        str(tiny_llama_dir),
        "--train-data",
        str(triplets),
        "--tasks",
        str(small_sts_file),
        "--db",
        str(tmp_path / "h.db"),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=2",
        "--set",
        "method_args.batch_size=2",
        "--set",
        "method_args.eval_every=1",
        *extra,
    ]
    return CliRunner().invoke(app, args)


def test_dev_tasks_evaluate_the_validation_split(tmp_path, tiny_llama_dir, small_sts_file, toy_tasks):
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--dev-tasks", "ToyWithValidation")
    assert result.exit_code == 0, result.output
    store = open_store(tmp_path / "h.db")
    (spec,) = store.get_run(1)["config"]["dev_tasks_resolved"]
    assert spec == {"name": "ToyWithValidation", "kind": "mteb", "split": "validation"}
    assert {row["task"] for row in store.dev_scores(1)} == {"ToyWithValidation"}


@pytest.mark.parametrize(
    "item, message",
    [
        ("ToyTestOnly", "--dev-tasks ToyTestOnly: its evaluated split is test"),
        ("ToyWithValidation:test", "dev scores never touch a test split"),
        ("ToyWithValidation:nosuch", "the task has no split 'nosuch'; it has train, validation, test"),
    ],
)
def test_a_test_split_or_a_missing_one_is_refused_before_anything_is_recorded(
    tmp_path, tiny_llama_dir, small_sts_file, toy_tasks, item, message
):
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--dev-tasks", item)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "h.db").exists() or open_store(tmp_path / "h.db").runs(statuses=None) == []


def test_a_chosen_split_is_its_own_version(tmp_path, tiny_llama_dir, toy_tasks):
    db = tmp_path / "h.db"
    for item in ("ToyWithValidation", "ToyWithValidation:validation"):
        result = CliRunner().invoke(
            app,
            ["run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", item, "--db", str(db)],
        )
        assert result.exit_code == 0, result.output
    store = open_store(db)
    test, validation = (store.get_run(i) for i in (1, 2))
    assert (
        test["task_versions"]["ToyWithValidation"] == "toy-rev"
        and validation["task_versions"]["ToyWithValidation"] == "toy-rev@validation"
    )
    assert test["scores"]["ToyWithValidation"] != validation["scores"]["ToyWithValidation"]  # other data, other score
    assert list(validation["score_details"][0]["details"]) == ["validation"]  # the split the score is for
    compared = json.loads(CliRunner().invoke(app, ["compare", "1", "2", "--json", "--db", str(db)]).stdout)
    assert [row["mean"] for row in compared] == [None, None]  # the two splits share no task: no mean over them


def test_a_task_file_takes_a_split_label_recorded_as_its_own_version(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    for item in (str(small_sts_file), f"{small_sts_file}:dev"):
        result = CliRunner().invoke(
            app,
            ["run", "--method", "untrained-mean", "--backbone", str(tiny_llama_dir), "--tasks", item, "--db", str(db)],
        )
        assert result.exit_code == 0, result.output
    store = open_store(db)
    plain, labelled = (store.get_run(i) for i in (1, 2))
    digest = plain["task_versions"]["tiny-sts"]
    assert (
        labelled["task_versions"]["tiny-sts"] == f"{digest}@dev"
    )  # the same bytes, said to be a dev split: ranked apart
    assert labelled["scores"]["tiny-sts"] == plain["scores"]["tiny-sts"]
    assert labelled["config"]["tasks_resolved"][0]["split"] == "dev"


def test_dev_tasks_refuse_a_task_file_labelled_test(tmp_path, tiny_llama_dir, small_sts_file):
    result = _run(tmp_path, tiny_llama_dir, small_sts_file, "--dev-tasks", f"{small_sts_file}:test")
    assert (
        result.exit_code == 2
        and f"--dev-tasks {small_sts_file}:test: dev scores never touch a test split"
        in " ".join(result.output.split())
    )
    assert not (tmp_path / "h.db").exists() or open_store(tmp_path / "h.db").runs(statuses=None) == []
    unknown = _run(tmp_path, tiny_llama_dir, small_sts_file, "--tasks", f"{small_sts_file}:nosuch")
    assert unknown.exit_code == 2 and "nosuch" in unknown.output
