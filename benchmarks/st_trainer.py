"""InfoNCE in the harness against sentence-transformers' trainer on the same work, side by side.

    .venv/bin/python benchmarks/st_trainer.py [--batch 8] [--steps 12] [--rounds 2]
    .venv/bin/python benchmarks/st_trainer.py --batch 64 --mini-batch 8 --steps 4   # GradCache vs CachedMNRL

Both sides fully fine-tune SmolLM2-135M (fp32, CPU or the GPU) on the same SICK-train triplets
(the released file under --data, else the offline set), in the same order (the harness's seeded order, given to
sentence-transformers as a sequential dataset), batch, steps, learning rate (AdamW, no warm-up,
linear decay, clipping at 1.0, no weight decay), texts as they are (template ``{text}``,
``max_length`` 64), mean pooling and temperature 0.05 (``scale`` 20):

* the harness: ``harness run --method infonce`` (in-batch and hard negatives; ``mini_batch`` for
  GradCache) through its own training loop, its step seconds and losses read from the run's record;
* sentence-transformers: ``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss``
  (``CachedMultipleNegativesRankingLoss`` with ``--mini-batch``), a callback timing each step and
  logging every step's loss.

sentence-transformers 6 renders every text through the tokenizer's chat template when it has one
(SmolLM2's does: a system prompt and a user turn around each sentence); the benchmark pins its plain
text modality, so both sides read the same tokens. Each runs in a process of its own; peak memory is that process's peak resident set (weights,
optimizer and activations). The two sides run ``--rounds`` times in turn (harness, ST, harness,
...), so a machine whose load changes meets both alike; each side's step time is the lowest of its
rounds' medians (after each round's first step). Reported: step times, peak memory, their ratios,
and the losses of the first steps side by side (those of the first round).
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

LR, MAX_LENGTH, SCALE = 2e-5, 64, 20.0


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def source() -> str:
    return triplet_source()


def ordered_triplets(batch: int, steps: int) -> list[tuple[str, str, str]]:
    """The triplets the harness's loop feeds on ``--train-data source()``, in its order, step after
    step (seed 0, one process)."""
    from harness.ranks import DistInfo
    from harness.training.order import batch_indices
    from methods.infonce import ContrastiveStage, InfoNCE

    examples = list(ContrastiveStage().examples(source(), 0))
    config = InfoNCE.Config(batch_size=batch, steps=steps)
    order = [
        i
        for step in range(steps)
        for i in batch_indices(len(examples), seed=0, step=step, micro=0, config=config, world=DistInfo())
    ]
    return [(examples[i].query, examples[i].pos, examples[i].neg) for i in order]


def run_harness(work: Path, batch: int, steps: int, mini_batch: int) -> dict:
    import sqlite3

    work.mkdir(parents=True, exist_ok=True)
    task = work / "tiny-sts.tsv"
    task.write_text("sentence1\tsentence2\tscore\na cat\ta cat\t5\na dog\ta car\t1\nthe sun\tthe sky\t3\n")
    db = work / "harness.db"
    sets = {
        "finetune": "full",
        "steps": steps,
        "batch_size": batch,
        "lr": LR,
        "warmup_ratio": 0.0,
        "max_length": MAX_LENGTH,
        "template": '"{text}"',
        "temperature": 1 / SCALE,
        "mini_batch": mini_batch,
        "max_grad_norm": 1.0,
    }
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--method",
        "infonce",
        "--backbone",
        "smollm2-135m",
        "--train-data",
        source(),
        "--tasks",
        str(task),
        "--db",
        str(db),
        "--output-dir",
        str(work / "runs"),
        "--no-cache",
        "--no-baseline",
    ]
    for key, value in sets.items():
        command += ["--set", f"method_args.{key}={value}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        sys.exit(f"harness run failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT step, loss, seconds FROM metrics ORDER BY step").fetchall()
        peak = conn.execute("SELECT peak_memory_bytes FROM timings WHERE phase LIKE 'train:%'").fetchone()[0]
    ends = [seconds for _, _, seconds in rows]
    return {
        "losses": [loss for _, loss, _ in rows],
        "step_s": [b - a for a, b in zip([0.0, *ends], ends)],
        "peak_bytes": peak,
    }


def run_st(triplets: list[tuple[str, str, str]], batch: int, steps: int, mini_batch: int) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling
    from torch.utils.data import BatchSampler, SequentialSampler
    from transformers import TrainerCallback

    from harness.model.backbones import ALIASES, gguf_folder

    torch.manual_seed(0)
    folder = gguf_folder(ALIASES["smollm2-135m"])
    plain = {
        "text": {"method": "forward", "method_output_name": "last_hidden_state"}
    }  # no chat template around each text
    transformer = Transformer(
        str(folder),
        max_seq_length=MAX_LENGTH,
        model_kwargs={"dtype": torch.float32},
        modality_config=plain,
        module_output_name="token_embeddings",
    )
    if transformer.tokenizer.pad_token is None:  # as the harness loads it: padding with the end-of-text token
        transformer.tokenizer.pad_token = transformer.tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")], device=device
    )
    loss = (
        losses.CachedMultipleNegativesRankingLoss(model, scale=SCALE, mini_batch_size=mini_batch)
        if mini_batch
        else losses.MultipleNegativesRankingLoss(model, scale=SCALE)
    )
    data = Dataset.from_dict(
        {
            "anchor": [t[0] for t in triplets],
            "positive": [t[1] for t in triplets],
            "negative": [t[2] for t in triplets],
        }
    )
    ends: list[float] = []
    logged: list[float] = []

    class Timing(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - the trainer's callback signature
            ends.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if logs and "loss" in logs:
                logged.append(float(logs["loss"]))

    class InOrder(SentenceTransformerTrainer):
        def get_batch_sampler(self, dataset, batch_size, drop_last, *args, **kwargs):  # noqa: ANN001 - the harness's order, as given
            return BatchSampler(SequentialSampler(dataset), batch_size, drop_last)

    arguments = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="st-bench-"),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=LR,
        warmup_steps=0,
        lr_scheduler_type="linear",
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        dataloader_drop_last=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = InOrder(model=model, args=arguments, train_dataset=data, loss=loss, callbacks=[Timing()])
    start = time.perf_counter()
    trainer.train()
    return {"losses": logged, "step_s": [b - a for a, b in zip([start, *ends], ends)], "peak_bytes": _peak_rss()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--mini-batch", type=int, default=0, help="GradCache / CachedMNRL chunk (texts); 0 = the plain losses"
    )
    parser.add_argument("--rounds", type=int, default=2, help="each side runs this many times, in turn")
    parser.add_argument("--child", choices=["st"])
    parser.add_argument("--work", type=Path)
    add_option(parser)
    args = parser.parse_args()
    use(args)
    if args.child:
        triplets = json.loads((args.work / "order.json").read_text())
        print(json.dumps(run_st([tuple(t) for t in triplets], args.batch, args.steps, args.mini_batch)))
        return
    work = Path(tempfile.mkdtemp(prefix="st-trainer-bench-"))
    triplets = ordered_triplets(args.batch, args.steps)
    (work / "order.json").write_text(json.dumps(triplets))
    rounds: dict[str, list[dict]] = {"harness": [], "st": []}
    for round_ in range(args.rounds):
        rounds["harness"].append(run_harness(work / f"round{round_}", args.batch, args.steps, args.mini_batch))
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "st",
                "--work",
                str(work),
                "--batch",
                str(args.batch),
                "--steps",
                str(args.steps),
                "--mini-batch",
                str(args.mini_batch),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.exit(f"sentence-transformers run failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        rounds["st"].append(json.loads(done.stdout.strip().splitlines()[-1]))
    harness, st = rounds["harness"][0], rounds["st"][0]
    kind = f"GradCache mini-batch {args.mini_batch} vs CachedMNRL" if args.mini_batch else "InfoNCE vs MNRL"
    print(
        f"SmolLM2-135M full fine-tuning, {kind}, batch {args.batch} triplets, {args.steps} steps, lr {LR}, max_length {MAX_LENGTH}"
    )
    h_step, s_step = (min(statistics.median(r["step_s"][1:]) for r in rounds[side]) for side in ("harness", "st"))
    print(
        "per round, median step s: harness "
        + ", ".join(f"{statistics.median(r['step_s'][1:]):.2f}" for r in rounds["harness"])
        + "; sentence-transformers "
        + ", ".join(f"{statistics.median(r['step_s'][1:]):.2f}" for r in rounds["st"])
    )
    print(f"{'':22} {'step s':>8} {'peak MiB':>9}")
    print(f"{'harness':22} {h_step:8.2f} {max(r['peak_bytes'] for r in rounds['harness']) / 2**20:9.0f}")
    print(f"{'sentence-transformers':22} {s_step:8.2f} {st['peak_bytes'] / 2**20:9.0f}")
    print(
        f"harness speed / sentence-transformers': {s_step / h_step:.2f}x; peak memory ratio (harness / ST): {harness['peak_bytes'] / st['peak_bytes']:.2f}"
    )
    print("losses, step by step (harness | sentence-transformers | difference):")
    for step, (a, b) in enumerate(zip(harness["losses"], st["losses"]), start=1):
        print(f"  {step:3d}  {a:.6f}  {b:.6f}  {a - b:+.2e}")


if __name__ == "__main__":
    main()
