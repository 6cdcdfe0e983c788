"""benchmarks/dev_tasks.py: the hub route writes the same task files as the local route from the
same rows (TREC QA's reranking file and BEIR folder too) (the hub is replaced by the local data in the hub's column names), and a bad --from or
an offline hub stops with a message and exit 2."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import PROJECT

SCRIPT = PROJECT / "benchmarks" / "dev_tasks.py"


def load_script():
    spec = importlib.util.spec_from_file_location("dev_tasks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path):
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return table[0], [(a, b, float(score)) for a, b, score in table[1:]]


def test_the_hub_route_writes_what_the_local_route_writes_from_the_same_rows(tmp_path, shared_data, monkeypatch):
    dev_tasks = load_script()
    local = {path.name: path for path in dev_tasks.write(tmp_path / "local", shared_data)}
    asked = []

    def hub_rows(path, config=None, split=None, revision=None):
        """The local files' rows under the hub datasets' column names."""
        asked.append((path, config, split, revision))
        if path == dev_tasks.TRECQA_HUB[0]:
            with local["trecqa-dev.csv"].open(encoding="utf-8", newline="") as handle:
                columns = dev_tasks.TRECQA_HUB[2]
                return [dict(zip(columns, (q, d, int(label)))) for q, d, label in list(csv.reader(handle))[1:]]
        name = {
            ("mteb/stsbenchmark-sts", "validation"): "stsb-dev.tsv",
            ("mteb/stsbenchmark-sts", "train"): "stsb-train.tsv",
            ("RobZamp/sick", "validation"): "sick-trial.tsv",
            ("nyu-mll/glue", "validation"): "msrp-val.tsv",
        }[(path, split)]
        columns = dev_tasks.HUB[name.removesuffix(".tsv")][3]
        return [dict(zip(columns, (a, b, score))) for a, b, score in rows(local[name])[1]]

    monkeypatch.setattr("datasets.load_dataset", hub_rows)
    from_hub = dev_tasks.write_from_hub(tmp_path / "hub")
    assert sorted(p.name for p in from_hub) == [
        "msrp-val.tsv",
        "sick-trial.tsv",
        "stsb-dev.tsv",
        "stsb-train.tsv",
        "trecqa-dev-beir",
        "trecqa-dev.csv",
    ]
    for path in from_hub:
        if path.is_dir():  # the BEIR folder: the same files, byte for byte
            for part in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
                assert (path / part).read_bytes() == (local[path.name] / part).read_bytes(), part
        elif path.suffix == ".csv":
            assert path.read_bytes() == local[path.name].read_bytes()
        else:
            assert rows(path) == rows(local[path.name]), path.name
    labels = {line.rsplit("\t", 1)[1] for line in (tmp_path / "hub" / "msrp-val.tsv").read_text().splitlines()[1:]}
    assert labels == {"0", "1"}  # labels as the pair-classification reader takes them
    assert ("mteb/stsbenchmark-sts", None, "validation", "b0fddb56ed78048fa8b90373c8a3cfc37b684831") in asked
    assert ("nyu-mll/glue", "mrpc", "validation", None) in asked
    assert ("lucadiliello/trecqa", None, "dev", None) in asked


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "hub"], "HF_HUB_OFFLINE is set"),
        (["--from", "no-such-folder"], "--from no-such-folder: no such folder"),
    ],
)
def test_a_source_it_cannot_read_stops_with_a_message(tmp_path, args, says):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "out"), *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 2 and says in done.stderr
    assert not (tmp_path / "out").exists()
