"""Data-parallel evaluation: 2 gloo processes under torchrun score an untrained run as 1 process
does (STS, retrieval, classification), each encoding about half the texts, and a rank that fails
fails the whole run, recorded once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.evaluation.data_parallel import shard_bounds
from leaderboard.store import open_store
from tests.conftest import WORDS
from tests.training.test_distributed import _free_port


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(2, 9))))


@pytest.fixture
def three_tasks(tmp_path, small_sts_file) -> list[str]:
    """An STS file, a BEIR folder (21 documents, 7 queries) and a classification file (45 texts)."""
    rng = np.random.default_rng(5)
    beir = tmp_path / "mini-beir"
    (beir / "qrels").mkdir(parents=True)
    corpus = {f"d{i}": _sentence(rng) for i in range(21)}
    queries = {f"q{i}": _sentence(rng) for i in range(7)}
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in corpus.items())
    )
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{3 * i + j}\t1\n" for i in range(7) for j in range(2))
    )
    groups = [WORDS[i * 10 : (i + 1) * 10] for i in range(3)]
    labels = rng.integers(0, 3, size=45)
    classes = tmp_path / "groups.tsv"
    classes.write_text(
        "text\tlabel\tsplit\n"
        + "".join(
            f"{' '.join(rng.choice(groups[y], size=int(rng.integers(3, 7))))}\tgroup {y}\t{'train' if i < 30 else 'test'}\n"
            for i, y in enumerate(labels)
        )
    )
    return [str(small_sts_file), str(beir), str(classes)]


def _run_args(tiny_llama_dir, tasks: list[str], db, method: str = "untrained-mean", *extra: str) -> list[str]:
    return [
        "run",
        "--method",
        method,
        "--backbone",
        str(tiny_llama_dir),
        "--db",
        str(db),
        "--eval-batch-size",
        "4",
        *(x for task in tasks for x in ("--tasks", task)),
        *extra,
    ]


def _torchrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        "-m",
        "harness",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})})


def _evaluations(store) -> dict[str, dict]:
    return {
        t["phase"].removeprefix("evaluate:"): t
        for t in store.get_run(1)["timings"]
        if t["phase"].startswith("evaluate:")
    }


def test_shards_are_contiguous_and_near_equal():
    assert shard_bounds(7, 2) == [0, 3, 7] and shard_bounds(1, 2) == [0, 0, 1] and shard_bounds(0, 3) == [0, 0, 0, 0]
    assert all(
        max(np.diff(shard_bounds(n, w))) - min(np.diff(shard_bounds(n, w))) <= 1
        for n in range(20)
        for w in (1, 2, 3, 5)
    )


def test_two_processes_score_as_one_each_encoding_half(tmp_path, tiny_llama_dir, three_tasks):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    result = CliRunner().invoke(app, _run_args(tiny_llama_dir, three_tasks, one))
    assert result.exit_code == 0, result.output
    cold = {"HARNESS_EMBEDDING_CACHE": str(tmp_path / "cold-cache")}  # not the vectors the first run cached
    done = _torchrun(*_run_args(tiny_llama_dir, three_tasks, two), env=cold)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("tiny-sts: cosine_spearman") == 1  # only rank 0 prints

    alone, parallel = open_store(one), open_store(two)
    assert [r["status"] for r in parallel.runs(statuses=None)] == ["finished"]  # one row: only rank 0 writes
    expected, got = alone.get_run(1)["scores"], parallel.get_run(1)["scores"]
    assert set(got) == set(expected) == {"tiny-sts", "mini-beir", "groups"}
    for task, score in expected.items():
        assert got[task] == pytest.approx(score, abs=1e-6), task
    single, shared = _evaluations(alone), _evaluations(parallel)
    for task, timing in shared.items():
        details, total = timing["details"], single[task]["items"]
        assert "world_size" not in single[task]["details"] and "texts_per_rank" not in single[task]["details"]
        assert details["world_size"] == 2 and details["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
        counts = details["texts_per_rank"]
        assert timing["items"] == sum(counts) == total > 0, task  # the memo asks for the same texts
        assert all(abs(n - total / 2) <= 2 for n in counts), (task, counts)  # within one text per encode call
        assert timing["tokens"] == single[task]["tokens"], task
        assert details["memo_hits"] == single[task]["details"]["memo_hits"], task


@pytest.mark.parametrize(
    "method, extra",
    [
        ("echo", ()),  # the text twice, pooled over a span; documents with their own template
        ("llm2vec", ("--set", "method_args.stages=[]")),  # bidirectional attention, the text's own tokens
    ],
)
def test_spans_and_bidirectional_attention_score_on_two_processes_as_on_one(
    tmp_path, tiny_llama_dir, three_tasks, method, extra
):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    result = CliRunner().invoke(app, _run_args(tiny_llama_dir, three_tasks, one, method, *extra))
    assert result.exit_code == 0, result.output
    done = _torchrun(
        *_run_args(tiny_llama_dir, three_tasks, two, method, *extra),
        env={"HARNESS_EMBEDDING_CACHE": str(tmp_path / "cold")},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected, got = open_store(one).get_run(1)["scores"], open_store(two).get_run(1)["scores"]
    assert set(got) == set(expected) == {"tiny-sts", "mini-beir", "groups"}
    for task, score in expected.items():
        assert got[task] == pytest.approx(score, abs=1e-6), task


def test_a_rank_that_fails_fails_the_run_once(tmp_path, tiny_llama_dir, small_sts_file):
    db = tmp_path / "h.db"
    done = _torchrun(*_run_args(tiny_llama_dir, [str(small_sts_file)], db), env={"HARNESS_RAISE_AT": "encode@1"})
    assert done.returncode != 0
    (run,) = open_store(db).runs(statuses=None)
    assert run["status"] == "failed", run
    assert run["error"].startswith("rank 1 of 2 failed: RuntimeError: fault injected at encode"), run["error"]
    assert open_store(db).get_run(1)["scores"] == {}


def test_harness_eval_under_torchrun_scores_as_the_run_did_from_rank_0s_cache(
    tmp_path, tiny_llama_dir, small_sts_file
):
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, _run_args(tiny_llama_dir, [str(small_sts_file)], db))
    assert result.exit_code == 0, result.output
    again = tmp_path / "tiny-sts-again.tsv"
    again.write_text(small_sts_file.read_text())
    done = _torchrun("eval", "1", "--tasks", str(again), "--db", str(db))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("Scores added to run #1") == 1
    scores = open_store(db).get_run(1)["scores"]
    assert scores["tiny-sts-again"] == pytest.approx(scores["tiny-sts"], abs=1e-6)
    evaluations = _evaluations(open_store(db))
    details = evaluations["tiny-sts-again"]["details"]
    assert details["world_size"] == 2  # recorded once, by rank 0
    # the run cached every vector; rank 0 read them and told rank 1, so neither encoded a text
    assert details["texts_per_rank"] == [0, 0] and evaluations["tiny-sts-again"]["items"] == 0
    assert details["cache_hits"] == evaluations["tiny-sts"]["items"] > 0
    assert [t["phase"] for t in open_store(db).get_run(1)["timings"]].count("evaluate:tiny-sts-again") == 1


def _gather_in_pieces(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from harness.evaluation import data_parallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    data_parallel.GATHER_ROWS = 2  # 7 rows in shards of 3 and 4: pieces of 2, 2 and a padded last
    sharded = data_parallel.ShardedEncoder.__new__(data_parallel.ShardedEncoder)
    sharded.embed_dim, sharded.world_size = 3, 2
    bounds = shard_bounds(7, 2)
    everything = np.arange(21, dtype=np.float32).reshape(7, 3)
    got = sharded._gathered(everything[bounds[rank] : bounds[rank + 1]], bounds)
    np.save(f"{out}-{rank}.npy", got)
    dist.destroy_process_group()


def test_the_vectors_are_gathered_in_pieces_in_shard_order(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_gather_in_pieces, args=(_free_port(), str(tmp_path / "got")), nprocs=2)
    for rank in range(2):
        np.testing.assert_array_equal(
            np.load(tmp_path / f"got-{rank}.npy"), np.arange(21, dtype=np.float32).reshape(7, 3)
        )
