"""Training-step cost side by side: AutoRegEmbed (IC step, CDA step) against InfoNCE, the
shared-base decoder against a layout that keeps a second frozen copy of the model, and InfoNCE
through GradCache (``method_args.mini_batch``) against the plain loss.

    .venv/bin/python benchmarks/train_step.py [--backbone smollm2-135m] [--batch 8] [--steps 4]
    .venv/bin/python benchmarks/train_step.py --batch 64 --mini-batch 8 --variants infonce,infonce-gradcache

Each variant runs in its own process (peak memory is per process): load the backbone, attach
LoRA (same settings for all), reset the peak, then run ``--steps`` + 1 steps on the same batch of
SICK triplets (the released file under --data, else the offline triplets); the first step is a warm-up left out of
the median step time. Memory is the peak resident set over the steps on CPU (Linux ``VmHWM``
after resetting it through ``/proc/self/clear_refs``), or ``torch.cuda.max_memory_allocated`` on
a GPU, weights included; "activation" subtracts what the process held before the first step
(weights, optimizer not yet allocated). Reported: medians and ratios against InfoNCE, the
shared-base decoder against the frozen-copy layout, and GradCache against plain InfoNCE.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import add_option, triplet_source, use  # noqa: E402

VARIANTS = ("infonce", "are-ic", "are-cda", "are-cda-copy", "infonce-gradcache")
DEFAULT_VARIANTS = "infonce,are-ic,are-cda,are-cda-copy"


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")


def _memory(device) -> int:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return _rss_kib("VmHWM") * 1024


def _now(device) -> int:
    import torch

    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    return _rss_kib("VmRSS") * 1024


def child(variant: str, backbone_name: str, batch_size: int, steps: int, mini_batch: int) -> dict:
    import copy

    import torch

    from harness.data.train_data import load_triplets
    from harness.model.backbones import backbone_spec, load_backbone
    from harness.training.parameters import prepare_model, trainable_parameters
    from methods.autoregembed import AutoRegEmbed, CDAExample, CDAStage, ICExample, ICStage
    from methods.infonce import ContrastiveStage, InfoNCE

    torch.manual_seed(0)
    backbone = load_backbone(backbone_spec(backbone_name))
    triplets = load_triplets(triplet_source())[:batch_size]
    common = {"batch_size": batch_size, "lora_r": 16, "lora_alpha": 32, "max_length": 64}
    if variant.startswith("infonce"):
        method = InfoNCE(InfoNCE.Config(**common, mini_batch=mini_batch if variant == "infonce-gradcache" else 0))
        stage, batch = ContrastiveStage(), triplets
    else:
        method = AutoRegEmbed(AutoRegEmbed.Config(**common))
        if variant == "are-ic":
            stage = ICStage(method)
            batch = [ICExample(t.query, "", t.query) for t in triplets]
    prepare_model(backbone, method.config)
    method.prepare(backbone)
    if variant.startswith("are-cda"):
        stage = CDAStage(method)
        if variant == "are-cda-copy":  # the authors' layout: a second, frozen model as decoder
            base = backbone.model.get_base_model()
            method.frozen = copy.deepcopy(base).eval().requires_grad_(False)
        batch = stage.begin(
            backbone.model, backbone.tokenizer, [CDAExample(t.query, t.pos, t.neg) for t in triplets], method.config
        )
        backbone.model.train()
    params = [p for _, p in trainable_parameters(backbone.model)]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    device = backbone.device

    def step() -> int:
        loss, tokens = stage.loss(backbone.model, backbone.tokenizer, batch, method.config)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return tokens

    before = _now(device)  # weights, frozen copy and cached references; no step taken yet
    _reset_peak(device)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        tokens = step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = _memory(device)
    return {
        "variant": variant,
        "device": str(device),
        "step_s": statistics.median(times[1:]),  # first = warm-up
        "peak_bytes": peak,
        "activation_bytes": peak - before,
        "tokens": tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--mini-batch", type=int, default=8, help="texts per GradCache chunk (infonce-gradcache)")
    parser.add_argument(
        "--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, infonce first; of {', '.join(VARIANTS)}"
    )
    parser.add_argument("--child")
    add_option(parser)
    args = parser.parse_args()
    use(args)
    if args.child:
        print(json.dumps(child(args.child, args.backbone, args.batch, args.steps, args.mini_batch)))
        return
    variants = args.variants.split(",")
    if "infonce-gradcache" in variants and args.mini_batch < 1:
        parser.error("--mini-batch: at least 1 text per GradCache chunk")
    if variants[0] != "infonce" or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: infonce first, then any of {', '.join(VARIANTS[1:])}")
    results = {}
    for variant in variants:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                variant,
                "--backbone",
                args.backbone,
                "--batch",
                str(args.batch),
                "--steps",
                str(args.steps),
                "--mini-batch",
                str(args.mini_batch),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results["infonce"]
    print(
        f"backbone={args.backbone} batch={args.batch} triplets steps={args.steps} mini-batch={args.mini_batch} device={base['device']}"
    )
    print(
        f"{'variant':14} {'step s':>8} {'x InfoNCE':>10} {'peak MiB':>9} {'x InfoNCE':>10} {'activ MiB':>10} {'x InfoNCE':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:14} {r['step_s']:8.2f} {r['step_s'] / base['step_s']:10.2f} {r['peak_bytes'] / 2**20:9.0f} "
            f"{r['peak_bytes'] / base['peak_bytes']:10.2f} {r['activation_bytes'] / 2**20:10.0f} "
            f"{r['activation_bytes'] / max(base['activation_bytes'], 1):10.2f}"
        )
    if "are-cda" in results and "are-cda-copy" in results:
        shared, copied = results["are-cda"], results["are-cda-copy"]
        print(
            f"shared-base decoder / frozen-copy layout, peak memory: {shared['peak_bytes'] / copied['peak_bytes']:.2f}"
        )
    if "infonce-gradcache" in results:
        cached = results["infonce-gradcache"]
        print(
            f"GradCache (mini-batch {args.mini_batch}) / plain InfoNCE: step time {cached['step_s'] / base['step_s']:.2f}, "
            f"peak memory {cached['peak_bytes'] / base['peak_bytes']:.2f}, "
            f"activation memory {cached['activation_bytes'] / max(base['activation_bytes'], 1):.2f}"
        )


if __name__ == "__main__":
    main()
