"""Full fine-tuning with 2 processes, side by side: replicated (gradients all-reduced), FSDP2 and
DeepSpeed ZeRO-3. Same backbone, data, seed and global batch for each; one torchrun per engine.

    .venv/bin/python benchmarks/sharding.py [--backbone smollm2-135m] [--batch 4] [--steps 6]

Each rank loads the backbone, unfreezes every weight, builds the engine and one optimizer step is
run as a warm-up (so AdamW state exists); then the peak resident set is reset (Linux
``/proc/self/clear_refs``; ``torch.cuda.max_memory_allocated`` on GPUs) and ``--steps`` steps of
InfoNCE on SICK triplets (the released file under --data, else the offline triplets) are timed. Reported per
engine, each the largest over ranks: the bytes of live tensor storage after the steps (weights,
gradients, optimizer state, engine buffers: what sharding divides), the peak memory over the timed
steps (resident set on CPU, after handing freed heap back with ``malloc_trim``, so it also holds
the runtime and activations), the median step time, the ratios against the replicated engine,
and the losses, which must agree across engines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import add_option, triplet_source, use  # noqa: E402


def _live_tensor_bytes() -> int:
    """Bytes of every distinct tensor storage alive in this process (weights, gradients,
    optimizer state, engine buffers); a DTensor counts through its local shard."""
    import gc
    import warnings

    import torch
    from torch.distributed.tensor import DTensor

    seen: dict[int, int] = {}
    warnings.filterwarnings("ignore", category=FutureWarning)  # isinstance on deprecated torch objects
    for obj in gc.get_objects():
        if not isinstance(obj, torch.Tensor) or isinstance(obj, DTensor) or obj.device.type == "meta":
            continue
        try:
            storage = obj.untyped_storage()
        except (RuntimeError, NotImplementedError):
            continue
        if storage.data_ptr():
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def _release_freed_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise, and RSS would count it)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


# ZeRO-3 as the transformers docs recommend it: bucket sizes "auto" (filled from the hidden size)
ZERO3 = {
    "zero_optimization": {
        "stage": 3,
        **dict.fromkeys(
            ("reduce_bucket_size", "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold"), "auto"
        ),
    }
}
ENGINES = {"replicated": ("none", None), "fsdp": ("fsdp", None), "zero3": ("deepspeed", ZERO3)}


def worker(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    from benchmarks.train_step import _memory, _reset_peak
    from harness.data.train_data import load_triplets
    from harness.model.backbones import backbone_spec, load_backbone
    from harness.training import distributed, engines
    from harness.training.order import batch_indices
    from harness.training.parameters import prepare_model
    from harness.training.sharding import for_training
    from methods.infonce import ContrastiveStage, InfoNCEConfig

    info = distributed.init("cuda" if torch.cuda.is_available() else "cpu")
    engine_name, ds = ENGINES[args.worker]
    config_file = ""
    if ds is not None:
        config_file = str(Path(args.out) / "ds.json")
        Path(config_file).write_text(json.dumps(ds))
    config = InfoNCEConfig(
        finetune="full",
        batch_size=args.batch,
        lr=1e-5,
        max_length=64,
        sharding=engine_name,
        sharding_config=config_file,
    )
    torch.manual_seed(0)
    backbone = load_backbone(backbone_spec(args.backbone))
    prepare_model(backbone, config)
    device = backbone.device
    engine = engines.build(backbone.model, for_training(config))
    engine.start_stage(config, args.steps + 1, lambda step: 1.0)
    stage = ContrastiveStage()
    data = load_triplets(triplet_source(), 0)
    losses, times = [], []
    for step in range(args.steps + 1):
        if step == 1:
            _release_freed_memory()
            _reset_peak(device)
        batch = [data[i] for i in batch_indices(len(data), seed=0, step=step, micro=0, config=config, world=info)]
        began = time.perf_counter()
        loss, _ = engine(lambda model, batch=batch: stage.loss(model, backbone.tokenizer, batch, config))
        engine.backward(loss, accum=1, last=True)
        engine.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - began)
            losses.append(distributed.mean_across_ranks(float(loss.detach())))
    peaks, live = [None] * info.world_size, [None] * info.world_size
    dist.all_gather_object(peaks, _memory(device))
    dist.all_gather_object(live, _live_tensor_bytes())
    if info.is_main:
        result = {
            "peak_bytes": max(peaks),
            "live_bytes": max(live),
            "step_s": statistics.median(times),
            "losses": losses,
        }
        (Path(args.out) / f"{args.worker}.json").write_text(json.dumps(result))
    distributed.exit_process(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=4, help="examples per rank per step")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--engines", default="fsdp,zero3", help="compared with the replicated engine")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    add_option(parser)
    args = parser.parse_args()
    use(args)
    if args.worker:
        return worker(args)
    out = tempfile.mkdtemp()
    results = {}
    for name in ["replicated", *[e for e in args.engines.split(",") if e != "replicated"]]:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={args.nproc}",
            "--master-port=29533",
            __file__,
            "--worker",
            name,
            "--out",
            out,
            "--backbone",
            args.backbone,
            "--batch",
            str(args.batch),
            "--steps",
            str(args.steps),
        ]
        subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        results[name] = json.loads((Path(out) / f"{name}.json").read_text())
    base = results["replicated"]
    print(f"{args.backbone}, full fine-tuning, {args.nproc} processes x batch {args.batch}, {args.steps} timed steps")
    print(
        f"{'engine':<11} {'tensors/rank MiB':>17} {'x repl.':>8} {'peak/rank MiB':>14} {'x repl.':>8} {'step s':>7} {'x repl.':>8}  max |loss diff|"
    )
    for name, r in results.items():
        diff = max(abs(a - b) for a, b in zip(r["losses"], base["losses"]))
        print(
            f"{name:<11} {r['live_bytes'] / 2**20:>17.0f} {r['live_bytes'] / base['live_bytes']:>8.2f} "
            f"{r['peak_bytes'] / 2**20:>14.0f} {r['peak_bytes'] / base['peak_bytes']:>8.2f} "
            f"{r['step_s']:>7.2f} {r['step_s'] / base['step_s']:>8.2f}  {diff:.2e}"
        )
    print("losses:", {name: [round(x, 5) for x in r["losses"]] for name, r in results.items()})


if __name__ == "__main__":
    main()
