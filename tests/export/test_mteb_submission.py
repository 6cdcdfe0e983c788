"""`harness export RUN --mteb DIR --model ENC`: the run laid out as the MTEB results repository
takes a submission (checked as its tests check it), read back by mteb, and a model_meta.py whose
loader reproduces the run's vectors through mteb."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import run_args
from tests.export.test_model_export import TEXTS, _harness_vectors


def test_a_run_exported_as_a_submission_validates_and_loads_through_mteb(tmp_path, tiny_llama_dir, small_sts_file):
    import mteb
    from mteb.models.model_meta import ModelMeta

    db = tmp_path / "h.db"
    runner = CliRunner()
    run = run_args(db, tiny_llama_dir, small_sts_file)
    assert runner.invoke(app, run).exit_code == 0
    assert (
        runner.invoke(app, [*run, "--seed", "1"]).exit_code == 0
    )  # the same config: an experiment beside the submission
    out, encoder = tmp_path / "mteb", tmp_path / "encoder"
    result = runner.invoke(app, ["export", "1", "2", "--mteb", str(out), "--model", str(encoder), "--db", str(db)])
    assert result.exit_code == 2 and "one run" in result.output  # --model exports one run
    result = runner.invoke(app, ["export", "1", "--mteb", str(out), "--model", str(encoder), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["export", "2", "--mteb", str(tmp_path / "mteb2"), "--db", str(db)]).exit_code == 0

    # the results repository's own checks: results/<name with __>/<revision>/ holds model_meta.json and task files
    (meta_file,) = (out / "results").glob("**/model_meta.json")
    meta = json.loads(meta_file.read_text())
    record = open_store(db).get_run(1)
    assert meta_file.parent == out / "results" / meta["name"].replace(" ", "_").replace("/", "__") / meta["revision"]
    assert meta["revision"] == record["config_hash"][:12] and meta["name"].startswith("harness/")
    assert {p.name for p in meta_file.parent.glob("*.json")} == {"model_meta.json", "tiny-sts.json"}
    assert (
        json.loads((meta_file.parent / "tiny-sts.json").read_text())["task_name"] == "tiny-sts"
    )  # task name matches file name
    known = set(ModelMeta.model_fields)
    ModelMeta.model_validate({**{k: v for k, v in meta.items() if k in known}, "loader": None})  # mteb's validation

    loaded = mteb.ResultCache(out).load_results(include_remote=False)
    (model,) = loaded.model_results
    (task_result,) = model.task_results
    assert (
        model.model_revision == meta["revision"]
        and abs(task_result.get_score() - record["scores"]["tiny-sts"]) <= 5e-7
    )
    assert list((tmp_path / "mteb2" / "results").glob("*/*/model_meta.json"))  # another export: its own submission

    # model_meta.py: mteb's ModelMeta (validated on import) whose loader reads the encoder folder
    spec = importlib.util.spec_from_file_location("exported_model_meta", encoder / "model_meta.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.model_meta, ModelMeta) and module.model_meta.name == meta["name"]
    model = module.model_meta.load_model(device="cpu")
    task = mteb.get_task("STSBenchmark")  # any task's metadata: the encoder reads symmetric texts alike
    from datasets import Dataset
    from torch.utils.data import DataLoader

    got = model.encode(
        DataLoader(Dataset.from_dict({"text": TEXTS}), batch_size=2),
        task_metadata=task.metadata,
        hf_split="test",
        hf_subset="default",
    )
    np.testing.assert_allclose(np.asarray(got), _harness_vectors(db), atol=1e-5, rtol=0)


def test_an_export_never_overwrites_another_runs_results_nor_exports_a_quick_check(
    tmp_path, tiny_llama_dir, small_sts_file
):
    db = tmp_path / "h.db"
    runner = CliRunner()
    run = run_args(db, tiny_llama_dir, small_sts_file)
    assert runner.invoke(app, run).exit_code == 0
    for _ in range(2):
        assert (
            runner.invoke(app, ["run", "--like", "1", "--db", str(db)]).exit_code == 0
        )  # runs 2 and 3: the same config and seed
    assert runner.invoke(app, [*run, "--limit", "3"]).exit_code == 0  # run 4
    out = tmp_path / "mteb"
    assert runner.invoke(app, ["export", "1", "--mteb", str(out), "--db", str(db)]).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = runner.invoke(
        app, ["export", "2", "--mteb", str(out), "--db", str(db)]
    )  # run 2 would land in run 1's folder
    assert again.exit_code == 2 and "holds run #1's results" in " ".join(again.output.split())
    both = runner.invoke(
        app, ["export", "1", "2", "3", "--mteb", str(tmp_path / "other"), "--db", str(db)]
    )  # 2 and 3: one experiment folder
    assert both.exit_code == 2 and "runs #2 and #3 would both write" in " ".join(both.output.split())
    assert not (tmp_path / "other" / "results").exists()  # planned before anything was written
    quick = runner.invoke(app, ["export", "4", "--mteb", str(tmp_path / "quick"), "--db", str(db)])
    assert quick.exit_code == 2 and "quick check (--limit 3)" in " ".join(quick.output.split())
    assert (
        runner.invoke(app, ["export", "1", "--mteb", str(out), "--db", str(db)]).exit_code == 0
    )  # its own folder: written again
    assert {p for p in out.rglob("*") if p.is_file()} == set(before)  # the same files, none added by run 2
