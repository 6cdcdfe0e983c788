"""The GPU check behind benchmarks/gpu_check.sh (see there for usage).

1. Picks the largest backbone available offline: the hub aliases found in the local hub cache
   (sized from their config.json), else the embedded SmolLM2-135M; ``--backbone`` overrides.
2. Runs ``harness run`` twice into its own database: InfoNCE (``--steps`` steps) and AutoRegEmbed
   (``--steps`` IC + ``--steps`` CDA steps), LoRA as in the ``small`` preset, bf16 autocast on
   (off with ``--dry-run``), SDPA attention (the harness always loads with it), evaluated on a
   tiny STS file so the check costs training time, not evaluation time.
3. Reads back per stage: tokens/s, MFU (against the matmul peak measured in the run) and peak
   memory (``torch.cuda.max_memory_allocated``: tensor memory, not the process's RSS).
4. Runs benchmarks/train_step.py for the shared-decoder vs frozen-copy peak-memory ratio.

Writes ``gpu_check.json`` into ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import add_option, triplet_source, use  # noqa: E402

STS_PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A woman cuts an onion.", 4.6),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.4),
    ("Two kids are playing football.", "Children play soccer outside.", 3.9),
    ("The sun is shining.", "It is raining heavily.", 0.8),
    ("A man is cooking pasta.", "Someone is making food.", 3.1),
    ("A plane is taking off.", "An airplane departs.", 4.5),
    ("A girl reads a book.", "A boy swims in a lake.", 0.3),
]


def largest_offline() -> str:
    """The alias of the largest backbone that loads without the hub."""
    from huggingface_hub import try_to_load_from_cache

    from harness.model.backbones import ALIASES

    best, best_size = "smollm2-135m", 135e6
    for name, spec in ALIASES.items():
        if spec.kind != "hub":
            continue
        config = try_to_load_from_cache(spec.source, "config.json")
        if isinstance(config, str):
            size = parameter_estimate(json.loads(Path(config).read_text()))
            if size > best_size:
                best, best_size = name, size
    return best


def parameter_estimate(config: dict) -> float:
    """Weights of a Llama-style model from its config.json (projections, MLP, embeddings)."""
    d, layers = config["hidden_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or d // heads
    kv = (config.get("num_key_value_heads") or heads) * head_dim
    per_layer = 2 * d * heads * head_dim + 2 * d * kv + 3 * d * config["intermediate_size"]
    embeddings = config["vocab_size"] * d * (1 if config.get("tie_word_embeddings") else 2)
    return layers * per_layer + embeddings


def harness_run(out: Path, backbone: str, method: str, extra: list[str], bf16: bool) -> None:
    triplets = triplet_source()
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--method",
        method,
        "--backbone",
        backbone,
        "--train-data",
        triplets,
        "--tasks",
        str(out / "tiny-sts.tsv"),
        "--db",
        str(out / "check.db"),
        "--output-dir",
        str(out / "runs"),
        "--set",
        f"method_args.bf16={'on' if bf16 else 'off'}",
        "--set",
        "method_args.max_length=64",
        "--no-baseline",
        *extra,
    ]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def stage_rows(out: Path) -> list[dict]:
    from leaderboard.store import open_store

    store = open_store(out / "check.db")
    rows = []
    for summary in store.runs(statuses=None):
        run = store.get_run(summary["run_id"])
        for timing in run["timings"]:
            if timing["phase"].startswith("train:"):
                details = timing["details"] or {}
                rows.append(
                    {
                        "method": run["method"],
                        "stage": timing["phase"][6:],
                        "seconds": timing["seconds"],
                        "tokens_per_s": details.get("tokens_per_s"),
                        "mfu": details.get("mfu"),
                        "peak_memory_gib": (timing["peak_memory_bytes"] or 0) / 2**30,
                    }
                )
    return rows


def memory_ratio(backbone: str) -> float | None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_step.py"),
            "--backbone",
            backbone,
            "--batch",
            "8",
            "--steps",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    print(done.stdout, flush=True)
    for line in done.stdout.splitlines():
        if line.startswith("shared-base decoder / frozen-copy layout"):
            return float(line.rsplit(":", 1)[1])
    print(done.stderr[-2000:], file=sys.stderr)
    return None


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="run the same path on a CPU in fp32")
    parser.add_argument("--backbone", default="", help="default: the largest available offline")
    parser.add_argument("--steps", type=int, default=0, help="steps per stage (default 20; 2 with --dry-run)")
    parser.add_argument(
        "--out", default="", help="folder for the database and gpu_check.json (default: a new temporary one)"
    )
    add_option(parser)
    args = parser.parse_args()
    use(args)
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not args.dry_run:
        raise SystemExit("gpu_check: no CUDA GPU is visible here; use --dry-run to check the script on a CPU.")
    steps = args.steps or (2 if args.dry_run else 20)
    backbone = args.backbone or largest_offline()
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "tiny-sts.tsv").write_text(
        "sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in STS_PAIRS)
    )
    bf16 = on_gpu and not args.dry_run
    device = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    print(
        f"gpu_check: {device}, backbone {backbone}, {steps} steps per stage, bf16 {'on' if bf16 else 'off'}, out {out}",
        flush=True,
    )
    harness_run(out, backbone, "infonce", ["--set", f"method_args.steps={steps}"], bf16)
    harness_run(
        out,
        backbone,
        "autoregembed",
        [
            "--set",
            f"method_args.ic_steps={steps}",
            "--set",
            f"method_args.cda_steps={steps}",
            "--set",
            f"method_args.cda_max_examples={8 * steps}",
        ],
        bf16,
    )
    rows = stage_rows(out)
    ratio = memory_ratio(backbone)
    report = {
        "device": device,
        "backbone": backbone,
        "steps": steps,
        "bf16": bf16,
        "stages": rows,
        "shared_vs_copy_peak_memory": ratio,
    }
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"{'method':13} {'stage':12} {'seconds':>8} {'tokens/s':>9} {'MFU':>6} {'peak GiB':>9}")
    for r in rows:
        mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        print(
            f"{r['method']:13} {r['stage']:12} {r['seconds']:8.1f} {r['tokens_per_s'] or 0:9.0f} {mfu:>6} {r['peak_memory_gib']:9.2f}"
        )
    print(f"shared-decoder / frozen-copy peak memory: {ratio}")
    print(f"written: {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
