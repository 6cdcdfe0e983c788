"""Sharded full fine-tunes (FSDP2, DeepSpeed ZeRO) on CPU with gloo: configs passed through, the
same losses and weights as one process holding the whole batch, resume after a kill, and the CLI
under ``accelerate launch`` with an FSDP or DeepSpeed configuration."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.training.sharding import FSDPOptions, choose_engine
from tests.conftest import run_args
from tests.training.test_distributed import _free_port, torchrun
from tests.training_fixtures import sharded_run

SCRIPT = Path(__file__).with_name("dist_sharded.py")
needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")


# -- configs, no processes ---------------------------------------------------------------------
def test_fsdp_configs_in_accelerate_and_trainer_spellings(tmp_path):
    accelerate_yaml = tmp_path / "accelerate.yaml"
    accelerate_yaml.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nfsdp_config:\n"
        "  fsdp_version: 2\n  fsdp_reshard_after_forward: false\n  fsdp_offload_params: true\n"
        "  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer\n  fsdp_state_dict_type: FULL_STATE_DICT\n"
    )
    got = choose_engine("fsdp", str(accelerate_yaml))
    assert got.engine == "fsdp" and got.fsdp == FSDPOptions(
        reshard_after_forward=False, offload_params=True, layer_classes=("LlamaDecoderLayer",)
    )
    trainer_json = tmp_path / "fsdp.json"
    trainer_json.write_text(
        json.dumps({"transformer_layer_cls_to_wrap": ["A", "B"], "activation_checkpointing": True})
    )
    got = choose_engine("fsdp", str(trainer_json)).fsdp
    assert got.layer_classes == ("A", "B") and got.activation_checkpointing and got.reshard_after_forward


def test_accelerate_launch_environment_selects_the_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_SHARDING_STRATEGY", "SHARD_GRAD_OP")
    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "LlamaDecoderLayer")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    got = choose_engine("auto", "")
    assert got.engine == "fsdp" and got.source == "accelerate launch"
    assert got.fsdp == FSDPOptions(
        reshard_after_forward=False, layer_classes=("LlamaDecoderLayer",), param_dtype="bf16"
    )
    assert choose_engine("none", "").engine == "none"  # an explicit choice wins over the environment

    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(ds))
    assert choose_engine("auto", "").deepspeed == {"zero_optimization": {"stage": 3}}
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "1")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "cpu")
    assert choose_engine("auto", "").deepspeed == {
        "zero_optimization": {"stage": 1, "offload_optimizer": {"device": "cpu"}}
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"fsdp_version": 1}', "set fsdp_version: 2"),
        ('{"fsdp_bogus": true}', "unknown FSDP option 'fsdp_bogus'"),
        ('{"sharding_strategy": "NO_SHARD"}', "NO_SHARD is not supported"),
        ('{"fsdp_version": 2,\n "x": }', "line 2, column"),
        ("[1, 2]", "top level must be a table"),
        ('{"transformer_layer_cls_to_wrap": 5}', "must be a class name or a list"),
    ],
)
def test_bad_fsdp_configs_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "fsdp.json"
    path.write_text(content)
    with pytest.raises(HarnessError, match=message) as caught:
        choose_engine("fsdp", str(path))
    assert str(path) in str(caught.value) or "fsdp_version" in str(caught.value)


def test_deepspeed_auto_values_are_filled_from_the_harness_options_and_contradictions_refused():
    from harness.training.sharding import deepspeed_config
    from methods.infonce import InfoNCEConfig

    config = InfoNCEConfig(batch_size=4, grad_accum=2, lr=3e-5, max_grad_norm=0.5, finetune="full")
    user = {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_clipping": "auto",
        "optimizer": {"type": "AdamW", "params": {"lr": "auto", "weight_decay": "auto"}},
        "zero_optimization": {"stage": 3, "reduce_bucket_size": "auto"},
    }
    got = deepspeed_config(user, config, world_size=1, hidden_size=32, bf16=False)
    assert got["train_micro_batch_size_per_gpu"] == 4 and got["gradient_accumulation_steps"] == 2
    assert got["train_batch_size"] == 8 and got["gradient_clipping"] == 0.5
    assert got["optimizer"]["params"] == {"lr": 3e-5, "weight_decay": 0.0}
    assert got["zero_optimization"]["reduce_bucket_size"] == 32 * 32 and got["bf16"] == {"enabled": False}
    assert user["train_micro_batch_size_per_gpu"] == "auto"  # the user's dict is left alone
    with pytest.raises(HarnessError, match="train_micro_batch_size_per_gpu=16"):
        deepspeed_config({"train_micro_batch_size_per_gpu": 16}, config, 1, 32, False)
    with pytest.raises(HarnessError, match="scheduler"):
        deepspeed_config({"scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 10}}}, config, 1, 32, False)
    delegated = {"type": "WarmupDecayLR", "params": {"warmup_num_steps": "auto", "total_num_steps": "auto"}}
    assert "scheduler" not in deepspeed_config({"scheduler": delegated}, config, 1, 32, False)
    with pytest.raises(HarnessError, match="zero_optimization.sub_group_size"):
        deepspeed_config({"zero_optimization": {"sub_group_size": "auto"}}, config, 1, 32, False)
    with pytest.raises(HarnessError, match="bf16 must be a table"):
        deepspeed_config({"bf16": True}, config, 1, 32, False)
    filled = deepspeed_config({}, config, world_size=4, hidden_size=32, bf16=True)
    assert filled["train_batch_size"] == 32 and filled["bf16"] == {"enabled": True}


def test_sharding_is_for_full_fine_tunes():
    from harness.training.sharding import for_training
    from methods.infonce import InfoNCEConfig

    with pytest.raises(HarnessError, match="finetune=full"):
        for_training(InfoNCEConfig(finetune="lora", sharding="fsdp"))
    assert for_training(InfoNCEConfig(finetune="full", sharding="fsdp")).engine == "fsdp"
    with pytest.raises(HarnessError, match="method_args.sharding_config needs"):
        choose_engine("auto", "x.json")


@pytest.mark.parametrize(
    "engine, name, content, named",
    [
        ("fsdp", "fsdp.yaml", "fsdp_config:\n  fsdp_version: 2\n  fsdp_offload_param: true\n", "fsdp_offload_param"),
        ("deepspeed", "ds.json", '{"train_micro_batch_size_per_gpu": 16}', "train_micro_batch_size_per_gpu=16"),
    ],
)
def test_a_bad_sharding_config_stops_the_run_before_anything_is_recorded(
    tmp_path, tiny_llama_dir, small_sts_file, engine, name, content, named
):
    from typer.testing import CliRunner

    from harness.cli import app

    bad = tmp_path / name
    bad.write_text(content)
    args = run_args(
        tmp_path / "h.db",
        tiny_llama_dir,
        small_sts_file,
        "--set",
        "method_args.finetune=full",
        "--set",
        f"method_args.sharding={engine}",
        "--set",
        f"method_args.sharding_config={bad}",
        method="infonce",
    )
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert named in " ".join(result.output.split())
    assert not (tmp_path / "h.db").exists()


# -- two processes against one ------------------------------------------------------------------
CASES = [
    pytest.param("fsdp", "infonce", None, id="fsdp-infonce"),
    pytest.param("fsdp", "autoregembed", None, id="fsdp-autoregembed"),
    pytest.param("fsdp", "autoregembed", "checkpointing", id="fsdp-autoregembed-gradient-checkpointing"),
    pytest.param("fsdp", "nv-embed", None, id="fsdp-nv-embed"),
    pytest.param(
        "deepspeed", "infonce", {"zero_optimization": {"stage": 3}}, id="zero3-infonce", marks=needs_deepspeed
    ),
    pytest.param(
        "deepspeed",
        "autoregembed",
        {"zero_optimization": {"stage": 2}, "gradient_clipping": "auto"},
        id="zero2-autoregembed",
        marks=needs_deepspeed,
    ),
]


def _reference(tmp_path: Path, method: str) -> dict:
    folder = tmp_path / "reference"
    folder.mkdir()
    return sharded_run(folder, engine="none", method=method, world_size=1)


def _assert_same_training(got: dict, expected: dict) -> None:
    assert [(s, n) for s, n, _ in got["losses"]] == [(s, n) for s, n, _ in expected["losses"]]
    for (_, _, a), (_, _, b) in zip(got["losses"], expected["losses"]):
        assert a == pytest.approx(b, abs=1e-5)
    assert set(got["weights"]) == set(expected["weights"]) and expected["weights"]
    for name, tensor in expected["weights"].items():
        torch.testing.assert_close(got["weights"][name], tensor, atol=2e-5, rtol=0, msg=name)


def _sharded(
    tmp_path: Path,
    engine: str,
    method: str,
    extra: dict | str | None,
    env: dict | None = None,
    check: bool = True,
    resume: bool = False,
):
    """Run tests/training/dist_sharded.py under torchrun; ``extra``: a DeepSpeed config, or "checkpointing"."""
    folder = tmp_path / "sharded"
    folder.mkdir(exist_ok=True)
    args = [str(SCRIPT), str(folder), engine, method, *(["--resume"] if resume else [])]
    if extra == "checkpointing":
        args.append("gradient_checkpointing=true")
    elif extra is not None:
        (tmp_path / "ds.json").write_text(json.dumps(extra))
        args.append(f"sharding_config={json.dumps(str(tmp_path / 'ds.json'))}")
    if check:
        torchrun(*args)
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node=2",
            "--master-addr=127.0.0.1",
            f"--master-port={_free_port()}",
            *args,
        ]
        subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    return folder


@pytest.mark.parametrize("engine, method, extra", CASES)
def test_two_sharded_processes_train_like_one_process_with_the_whole_batch(tmp_path, engine, method, extra):
    folder = _sharded(tmp_path, engine, method, extra)
    got = torch.load(folder / "result.pt", weights_only=False)
    expected = _reference(tmp_path, method)
    _assert_same_training(got, expected)
    initial = dict(__import__("tests.conftest", fromlist=["make_tiny_llama"]).make_tiny_llama(0).named_parameters())
    moved = max(
        float((expected["weights"][n] - initial[n].detach()).abs().max()) for n in initial if n in expected["weights"]
    )
    assert moved > 100 * 2e-5  # the tolerance is far below what training changed
    state = json.loads(next((folder / "run" / "checkpoints").glob("*/state.json")).read_text())
    assert state["engine"] == engine


def test_one_process_can_shard_too(tmp_path):
    """One process, one group of one (e.g. a single GPU with parameters offloaded to the CPU)."""
    folder = tmp_path / "single"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), "fsdp", "autoregembed"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_training(torch.load(folder / "result.pt", weights_only=False), _reference(tmp_path, "autoregembed"))


@pytest.mark.parametrize(
    "engine, ds_config",
    [("fsdp", None), pytest.param("deepspeed", {"zero_optimization": {"stage": 3}}, marks=needs_deepspeed)],
)
def test_a_sharded_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, engine, ds_config):
    folder = _sharded(tmp_path, engine, "infonce", ds_config, env={"HARNESS_KILL_AT": "train-step:2"}, check=False)
    assert not (folder / "result.pt").exists()
    state = json.loads((folder / "run" / "checkpoints" / "0-contrastive" / "state.json").read_text())
    assert state["step"] == 1 and not state["done"]  # killed after step 2, before its checkpoint
    _sharded(tmp_path, engine, "infonce", ds_config, resume=True)  # resumes from step 1
    got = torch.load(folder / "result.pt", weights_only=False)
    expected = _reference(tmp_path, "infonce")
    assert [n for _, n, _ in got["losses"]] == [2, 3]  # only the steps run after the resume
    got["losses"] = expected["losses"][:1] + got["losses"]
    _assert_same_training(got, expected)


# -- the CLI under accelerate launch --------------------------------------------------------------
@pytest.mark.parametrize(
    "launch, method",
    [
        pytest.param(["--use_fsdp", "--fsdp_version=2", "--fsdp_reshard_after_forward=true"], "infonce", id="fsdp"),
        pytest.param(["--config_file=CFG"], "autoregembed", id="fsdp-config-file"),
        pytest.param(
            ["--use_deepspeed", "--deepspeed_config_file=DS"], "autoregembed", id="deepspeed", marks=needs_deepspeed
        ),
    ],
)
def test_accelerate_launch_passes_its_sharding_config_to_harness_run(
    tmp_path, tiny_llama_dir, small_sts_file, launch, method
):
    from typer.testing import CliRunner

    from harness.cli import app
    from leaderboard.store import open_store
    from tests.training_fixtures import TRIPLETS

    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text("".join(json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}) + "\n" for t in TRIPLETS))
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto"}))
    accelerate_config = tmp_path / "fsdp.yaml"  # as `accelerate config` writes it
    accelerate_config.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\nmixed_precision: 'no'\nnum_machines: 1\n"
        "num_processes: 2\nfsdp_config:\n  fsdp_version: 2\n  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n"
        "  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer\n  fsdp_state_dict_type: FULL_STATE_DICT\n"
    )
    db = tmp_path / "h.db"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes=2",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        f"--main_process_port={_free_port()}",
        *[arg.replace("DS", str(ds)).replace("CFG", str(accelerate_config)) for arg in launch],
        "-m",
        "harness",
        "run",
        "--method",
        method,
        "--backbone",
        str(tiny_llama_dir),
        "--train-data",
        str(triplets),
        "--tasks",
        str(small_sts_file),
        "--db",
        str(db),
        "--output-dir",
        str(tmp_path / "runs"),
        "--set",
        "method_args.steps=2",
        "--set",
        "method_args.batch_size=2",
        "--set",
        'method_args.finetune="full"',
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    store = open_store(db)
    (run,) = store.runs(statuses=None)
    assert run["status"] == "finished"  # one row: only rank 0 writes
    record = store.get_run(run["run_id"])
    trained = [t["details"] for t in record["timings"] if t["phase"].startswith("train:")]
    engine = "deepspeed" if "deepspeed" in launch[0] else "fsdp"
    assert trained and all(d["engine"] == engine and d["world_size"] == 2 for d in trained)
    # evaluated from the gathered final checkpoint; `harness eval` reloads it and agrees
    again = tmp_path / "tiny-sts-again.tsv"
    again.write_text(small_sts_file.read_text())
    result = CliRunner().invoke(
        app, ["eval", str(run["run_id"]), "--tasks", str(again), "--db", str(db)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    scores = store.get_run(run["run_id"])["scores"]
    assert scores["tiny-sts-again"] == pytest.approx(scores["tiny-sts"], abs=1e-6)
