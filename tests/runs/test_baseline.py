"""`harness run` evaluates the method's declared baseline beside it, records it as a run of its own
and closes with the two compared; each built-in method declares the training-free run that
isolates what it adds."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.config import RunConfig
from harness.prompts import INSTRUCTION_TEMPLATE
from harness.registry import get_method, method_names
from harness.runs.plan import build_method, plan_run
from leaderboard.store import open_store
from tests.conftest import independent_cosine_spearman, run_args


@pytest.fixture
def with_baseline(monkeypatch):
    monkeypatch.delenv("HARNESS_BASELINE", raising=False)  # the user's default


def test_each_declared_baseline_trains_nothing_and_plans_on_a_backbone(tiny_llama_dir):
    declared = {}
    for name in method_names():
        method = build_method(RunConfig(method=name, backbone=str(tiny_llama_dir)))
        twin = method.baseline()
        if twin is None:
            continue
        declared[name] = twin
        plan = plan_run(RunConfig(method=twin[0], backbone=str(tiny_llama_dir), method_args=twin[1]))
        assert not plan.method.stages() and plan.method.baseline() is None or twin[0] == "prompteol", name
    assert {"autoregembed", "infonce", "llm2vec", "nv-embed", "echo", "token-prepending", "prompteol"} <= set(declared)
    assert declared["echo"] == ("untrained-mean", {})
    assert declared["infonce"][0] == "untrained-mean"
    assert declared["infonce"][1]["template"] == build_method(RunConfig(method="infonce")).config.template
    assert declared["llm2vec"] == ("untrained-mean", {"template": "{text}", "pool_text_only": True})
    # AutoRegEmbed's untrained row reads its instruction, as the paper's -L row
    assert declared["autoregembed"][0] == "untrained-last"
    assert (
        declared["autoregembed"][1]["template"]
        == INSTRUCTION_TEMPLATE
        == build_method(RunConfig()).config.template[:-1]
    )
    # token prepending without its placeholder is PromptEOL's own default template
    assert declared["token-prepending"] == ("prompteol", {"template": get_method("prompteol").Config().template})


def test_a_run_closes_with_its_baseline_evaluated_and_compared(
    with_baseline, tmp_path, tiny_llama_dir, triplets_file, small_sts_file
):
    db = tmp_path / "h.db"
    args = run_args(
        db,
        tiny_llama_dir,
        small_sts_file,
        "--train-data",
        str(triplets_file),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=2",
        "--set",
        "method_args.batch_size=2",
        "--set",
        "method_args.template='{text}'",
        method="infonce",
    )
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    store = open_store(db)
    trained, baseline = store.get_run(1), store.get_run(2)
    assert (trained["method"], baseline["method"]) == ("infonce", "untrained-mean")
    assert baseline["status"] == "finished" and baseline["config"]["method_args"]["template"] == "{text}"
    assert baseline["backbone"] == trained["backbone"] and baseline["tasks"] == trained["tasks"]
    (task,) = trained["scores"]
    # the baseline's score is mean pooling of the untouched backbone, computed here without the harness
    assert baseline["scores"][task] == pytest.approx(
        independent_cosine_spearman(tiny_llama_dir, small_sts_file), abs=1e-4
    )
    out = result.output
    assert "Baseline recorded as run #2" in out and "--baseline 2" in out
    assert "[" in out and "95% interval" in out  # the paired interval of the difference
    assert "* best" not in out.split("Baseline:")[0]  # no one-run table before the comparison

    alone = CliRunner().invoke(app, [*args, "--no-baseline"], catch_exceptions=False)
    assert alone.exit_code == 0 and "Baseline" not in alone.output
    assert sorted(r["run_id"] for r in store.runs(statuses=None)) == [1, 2, 3]
    store.close()


def test_a_baseline_itself_gets_none_and_a_table_of_one_run_marks_no_best(
    with_baseline, tmp_path, tiny_llama_dir, small_sts_file
):
    result = CliRunner().invoke(app, run_args(tmp_path / "h.db", tiny_llama_dir, small_sts_file))
    assert result.exit_code == 0, result.output
    assert "Baseline" not in result.output and "best" not in result.output


def test_a_failed_baseline_leaves_the_recorded_run_reported_and_the_exit_zero(
    with_baseline, tmp_path, tiny_llama_dir, small_sts_file, monkeypatch
):
    import harness.runs.execute as running

    real = running.execute

    def failing_baseline(plan, *args, **kwargs):
        if plan.config.method == "untrained-last":
            raise RuntimeError("out of memory (a test)")
        return real(plan, *args, **kwargs)

    monkeypatch.setattr(running, "execute", failing_baseline)
    result = CliRunner().invoke(app, run_args(tmp_path / "h.db", tiny_llama_dir, small_sts_file, method="prompteol"))
    assert result.exit_code == 0, result.output
    assert "the baseline (untrained-last) failed: RuntimeError: out of memory (a test)" in " ".join(
        result.output.split()
    )
    assert "Recorded as run #1" in result.output and "Scores x100" in result.output
    assert [r["method"] for r in open_store(tmp_path / "h.db").runs(statuses=None)] == ["prompteol"]


def test_a_baseline_that_would_train_is_refused_before_anything_runs(
    with_baseline, tmp_path, tiny_llama_dir, small_sts_file, monkeypatch
):
    from methods.untrained import PromptEOL

    monkeypatch.setattr(PromptEOL, "baseline", lambda self: ("infonce", {}))
    result = CliRunner().invoke(app, run_args(tmp_path / "h.db", tiny_llama_dir, small_sts_file, method="prompteol"))
    assert result.exit_code == 2 and "a baseline must be training-free" in " ".join(result.output.split())
    assert not (tmp_path / "h.db").exists()
