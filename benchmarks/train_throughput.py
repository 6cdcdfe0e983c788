"""Training throughput against the machine's limit: model FLOP utilisation (MFU) of InfoNCE, IC
and CDA steps, each before and after a change, side by side in one run.

    .venv/bin/python benchmarks/train_throughput.py [--backbone smollm2-135m] [--steps 8]
        [--rounds 2] [--before REF] [--stages infonce,ic,cda]

The machine's peak is measured first in the same run: the best of a few 2048 x 2048 fp32 matrix
products on a CPU (8192 x 8192 bf16 on a GPU). Each stage then runs on the `small` preset's
settings (batch 8, max_length 64, LoRA r16; bf16 autocast and SDPA on a GPU) over the same
SICK-train batches (the released file under --data, else the offline triplets), one warm-up and ``--steps``
timed optimizer steps per variant, each variant in its own process:

- ``before``: the code at ``--before`` (git archive of that commit): rows padded to the longest,
  the LM head and log-softmax over every padded target position;
- ``padded``: this tree as it trains by default (``method_args.pack=false``): rows still padded,
  the LM head and log-softmax only at real target positions;
- ``packed``: this tree with ``method_args.pack=true``: one packed sequence per pass.

The variants run in turn, ``--rounds`` times, so machine noise falls on all alike; the table gives
the median step over all rounds and its ratio to ``before``. Model FLOPs per step come from the
analytic count of :mod:`harness.telemetry.flops` (the same batches for every variant, so the same FLOPs);
MFU = FLOPs / median step / peak. "first loss" is the first batch's loss with dropout off: the
three must agree (the maths did not change).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = Path(os.environ.get("HARNESS_TREE", ROOT))  # the code a child process measures
sys.path.insert(0, str(TREE))
_spec = importlib.util.spec_from_file_location("released_data", ROOT / "benchmarks" / "released_data.py")
released_data = importlib.util.module_from_spec(_spec)  # this checkout's, whatever TREE holds
_spec.loader.exec_module(released_data)
BEFORE = "bf1be81"  # main before issue 14: padded rows, LM head over padded positions


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(stage_name: str, backbone_name: str, batch: int, steps: int):
    """(backbone, stage, config, batches) for one stage on the small preset's settings."""
    import torch

    from harness.data.train_data import load_triplets
    from harness.model.backbones import backbone_spec, load_backbone
    from harness.training.parameters import prepare_model
    from methods.autoregembed import PRESETS, AutoRegEmbed, CDAExample, CDAStage, ICExample, ICStage
    from methods.infonce import ContrastiveStage, InfoNCE

    torch.manual_seed(0)
    backbone = load_backbone(backbone_spec(backbone_name))
    triplets = load_triplets(released_data.triplet_source(), 0)[: batch * steps]
    small = {
        k: v for k, v in PRESETS["small"].items() if k in ("finetune", "lora_r", "lora_alpha", "lr", "max_length")
    }
    if stage_name == "infonce":
        method = InfoNCE(InfoNCE.Config(batch_size=batch, **small))
        stage, examples = ContrastiveStage(), triplets
    else:
        method = AutoRegEmbed(AutoRegEmbed.Config(batch_size=batch, **small))
        stage = ICStage(method) if stage_name == "ic" else CDAStage(method)
        examples = (
            [ICExample(t.query, "", t.query) for t in triplets]
            if stage_name == "ic"
            else [CDAExample(t.query, t.pos, t.neg) for t in triplets]
        )
    prepare_model(backbone, method.config)
    method.prepare(backbone)
    if stage_name == "cda":
        backbone.model.eval()
        examples = stage.begin(backbone.model, backbone.tokenizer, examples, method.config)
        backbone.model.train()
    return backbone, stage, method.config, [examples[i : i + batch] for i in range(0, len(examples), batch)]


def child(stage_name: str, variant: str, args: argparse.Namespace) -> dict:
    """Step times of one variant in this process: ``before`` (whatever tree is first on the path),
    ``padded`` or ``packed`` (this tree, ``method_args.pack`` false / true)."""
    import torch

    from harness.training.parameters import bf16_wanted, trainable_parameters

    backbone, stage, config, batches = build(stage_name, args.backbone, args.batch, args.steps + 1)
    if variant != "before":
        config = dataclasses.replace(config, pack=variant == "packed")
    model, device = backbone.model, backbone.device
    model.eval()  # the first batch's loss without dropout: the maths of both trees must agree
    with torch.no_grad():
        first_loss = float(stage.loss(model, backbone.tokenizer, batches[0], config)[0])
    model.train()
    optimizer = torch.optim.AdamW([p for _, p in trainable_parameters(model)], lr=config.lr)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if bf16_wanted(device, config) else contextlib.nullcontext()
    )
    times, counted = [], []
    for batch in batches:
        meter = _meter()
        _sync(device)
        start = time.perf_counter()
        with meter as total, autocast:
            loss, _ = stage.loss(model, backbone.tokenizer, batch, config)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - start)
        counted.append(total[0])
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"times": times[1:], "flops": counted[1:], "first_loss": first_loss, "peak_bytes": peak}


def _meter():
    """The FLOP meter where this tree has one (the tree before issue 14 has none)."""
    try:
        from harness.telemetry import flops
    except ImportError:
        return contextlib.nullcontext([0.0])
    return flops.meter()


def _tree_at(ref: str) -> Path:
    """This repository's files at ``ref``, extracted once into a temporary folder."""
    folder = Path(tempfile.gettempdir()) / f"harness-at-{ref}"
    if not (folder / "harness").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _run_child(tree: Path, stage_name: str, variant: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{stage_name}:{variant}",
        "--backbone",
        args.backbone,
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
    ]
    env = {**os.environ, "HARNESS_TREE": str(tree)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree)
    if done.returncode:
        raise SystemExit(f"{stage_name}:{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and round (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all variants in turn")
    parser.add_argument("--before", default=BEFORE, help="git ref of the code to compare against")
    parser.add_argument("--stages", default="infonce,ic,cda")
    parser.add_argument("--child")
    released_data.add_option(parser)
    args = parser.parse_args()
    released_data.use(args)
    if args.child:
        stage_name, variant = args.child.split(":")
        import harness

        assert Path(harness.__file__).resolve().is_relative_to(TREE.resolve()), (harness.__file__, TREE)
        print(json.dumps(child(stage_name, variant, args)))
        return
    import torch

    from harness.telemetry.phases import matmul_peak

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    peak = matmul_peak(device, dtype)
    print(f"device {device}, torch threads {torch.get_num_threads()}, matmul peak {peak / 1e9:.1f} GFLOP/s ({dtype})")
    print(
        f"backbone {args.backbone}, batch {args.batch}, {args.rounds} rounds x {args.steps} timed steps per variant; before = {args.before}"
    )
    trees = {"before": _tree_at(args.before), "padded": ROOT, "packed": ROOT}
    print(
        f"{'stage':8} {'variant':8} {'median s':>9} {'x before':>9} {'GFLOP/step':>11} {'MFU':>6} {'first loss':>12}"
    )
    for stage_name in args.stages.split(","):
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(_run_child(tree, stage_name, name, args))
        model_flops = statistics.mean(f for r in runs["packed"] for f in r["flops"])  # the same batches for all
        medians = {name: statistics.median(t for r in rs for t in r["times"]) for name, rs in runs.items()}
        for name, rs in runs.items():
            mfu = model_flops / medians[name] / peak
            print(
                f"{stage_name:8} {name:8} {medians[name]:9.3f} {medians['before'] / medians[name]:8.2f}x "
                f"{model_flops / 1e9:11.2f} {100 * mfu:5.1f}% {rs[0]['first_loss']:12.6f}"
            )


if __name__ == "__main__":
    main()
