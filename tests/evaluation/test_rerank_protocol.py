"""Which questions a reranking file scores (`rerank_protocol`): answered (default), clean or all,
against MAP recomputed in numpy from independently computed vectors."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import run_args
from tests.evaluation.test_dims import _mean_vectors

QUESTIONS = {  # question -> (relevant, irrelevant) candidates
    "the man ate food": (["the woman ate food"], ["the sky is blue", "rain falls"]),
    "the cat sat on the mat": (["a cat sat on a mat", "the cat ran"], ["the car drove down the road"]),
    "the bird flew over the house": ([], ["the sun shines", "the dog ran"]),  # unanswered
    "the man read a book": (["the woman wrote a letter"], []),  # nothing to rank it against
    "quick brown fox jumps": ([], ["lazy dog sat"]),  # unanswered
}


def _average_precision(question_vector, relevant, irrelevant):
    if len(relevant) == 0:
        return 0.0
    candidates = np.concatenate([relevant, irrelevant]) if len(irrelevant) else relevant
    cosine = candidates @ question_vector / np.linalg.norm(candidates, axis=1) / np.linalg.norm(question_vector)
    order = np.argsort(-cosine, kind="stable")
    hits = (order < len(relevant)).astype(float)
    return float(np.sum(np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits) / len(relevant))


@pytest.mark.parametrize("protocol, kept, left_out", [("answered", 3, 2), ("clean", 2, 3), ("all", 5, 0)])
def test_each_protocol_scores_its_questions(tmp_path, tiny_llama_dir, protocol, kept, left_out):
    rows = ["query,document,label"] + [
        f"{q},{d},{label}"
        for q, (pos, neg) in QUESTIONS.items()
        for d, label in [*((d, 1) for d in pos), *((d, 0) for d in neg)]
    ]
    (tmp_path / "rr.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path / "h.db"
    args = run_args(db, tiny_llama_dir, tmp_path / "rr.csv", "--set", f"rerank_protocol={protocol}")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        f"{left_out} question(s) left out by the '{protocol}' protocol" in " ".join(result.output.split())
    ) == bool(left_out)
    record = open_store(db).get_run(1)
    (spec,) = record["config"]["tasks_resolved"]
    assert spec["items"] == kept and (spec.get("protocol"), spec.get("left_out")) == (
        (protocol, left_out) if protocol != "all" else (None, None)
    )
    assert record["task_versions"]["rr"].endswith(f":{protocol}") == (protocol != "all")
    chosen = [
        q for q, (pos, neg) in QUESTIONS.items() if protocol == "all" or (pos and (neg or protocol == "answered"))
    ]
    assert len(chosen) == kept
    aps = []
    for question in chosen:
        pos, neg = QUESTIONS[question]
        vectors = _mean_vectors(tiny_llama_dir, [question, *pos, *neg])
        aps.append(_average_precision(vectors[0], vectors[1 : 1 + len(pos)], vectors[1 + len(pos) :]))
    assert record["scores"]["rr"] == pytest.approx(float(np.mean(aps)), abs=1e-5)
    import json

    ranked = json.loads(
        CliRunner().invoke(app, ["leaderboard", "--tasks", str(tmp_path / "rr.csv"), "--json", "--db", str(db)]).stdout
    )
    assert [run["run_id"] for run in ranked] == (
        [1] if protocol == "answered" else []
    )  # the file ranks on its default protocol


def test_a_run_recorded_before_protocols_is_rerun_under_its_own():
    """A recorded reranking file without a protocol was scored over every question (mteb's way):
    --resume, --like and eval rebuild that, not today's default."""
    from harness.runs.plan import recorded_config

    old = {
        "run_id": 1,
        "config": {"tasks_resolved": [{"name": "rr", "kind": "file", "type": "Reranking", "items": 5}]},
    }
    new = {
        "run_id": 2,
        "config": {
            "tasks_resolved": [{"name": "rr", "kind": "file", "type": "Reranking", "items": 3, "protocol": "answered"}]
        },
    }
    assert recorded_config(old).rerank_protocol == "all" and recorded_config(new).rerank_protocol == "answered"
