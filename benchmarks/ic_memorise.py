"""How many passes over a text AutoRegEmbed's IC stage needs before the slots carry it: IC with
LoRA on the first few sentences of a SICK file, measured on those same texts as it trains.

    python benchmarks/ic_memorise.py SICK_FILE [--texts 8] [--steps 150] [--every 25] [--lr 1e-3]
        [--backbone smollm2-135m] [--seed 0] [--out points.jsonl]

The texts are the file's first ``--texts`` distinct sentences (sentence_A, then sentence_B, row by
row). The method's `small` preset (LoRA r16, batch 8, its slots and template) trains its IC stage
alone on them through the shared loop (warm-up, linear decay over ``--steps``), at ``--lr``; the
loop pauses every ``--every`` steps (its ``eval_every`` hook, which leaves the training as it is
without it). At step 0 and at each pause one JSON line gives ``ICStage.diagnose``'s losses on the
training texts themselves (nats per token, EOS included): each text's own slots, the previous
text's slots, no slots.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.training.train_config import Hooks  # noqa: E402


def first_sentences(path: Path, count: int) -> list[str]:
    """The first ``count`` distinct sentences of a SICK file, sentence_A then sentence_B per row."""
    from harness.data.records import read_rows, text_cell

    kind = "SICK file"
    table = read_rows(path, (".txt", ".tsv"), kind)
    table.require(path, ("sentence_a", "sentence_b"), kind)
    texts = dict.fromkeys(
        text_cell(path, line, row, column, kind) for line, row in table.rows for column in ("sentence_a", "sentence_b")
    )
    return list(texts)[:count]


class Memorisation(Hooks):
    """At each of the loop's pauses, the IC stage's own diagnostics on the texts it trains on."""

    def __init__(self, stage: Any, backbone: Any, config: Any, texts: Sequence[str], out: str = "") -> None:
        from methods.autoregembed import ICExample

        self.stage, self.backbone, self.config, self.out = stage, backbone, config, out
        self.rows = [ICExample(text, "", text) for text in texts]
        self.began = time.perf_counter()
        self.points: list[dict[str, float]] = []

    def dev_evaluation(self, stage: str, step: int) -> None:
        import torch

        self.stage.held_out = self.rows
        with torch.no_grad():
            values, _ = self.stage.diagnose(self.backbone.model, self.backbone.tokenizer, self.config)
        point = {"step": step, **{n: round(values[f"heldout_loss_{n}"], 2) for n in ("own", "shuffled", "empty")}}
        point["seconds"] = round(time.perf_counter() - self.began, 1)
        self.points.append(point)
        print(json.dumps(point), flush=True)
        if self.out:
            with open(self.out, "a") as handle:
                handle.write(json.dumps(point) + "\n")


def memorise(
    backbone: Any, texts: Sequence[str], options: dict[str, Any], seed: int, out: str = ""
) -> list[dict[str, float]]:
    """Train AutoRegEmbed's IC stage (``options`` on its preset) on ``texts`` and measure it on them
    at step 0 and every ``eval_every`` steps."""
    from harness.runs.plan import method_options
    from harness.runs.process import seed_everything
    from harness.training.loop import TrainJob, run_stages, stage_config
    from harness.training.parameters import prepare_model
    from methods.autoregembed import AutoRegEmbed

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "ic.jsonl"
        data.write_text("".join(json.dumps({"context": t, "answer": t}) + "\n" for t in texts))
        method = AutoRegEmbed(
            method_options(AutoRegEmbed, {**options, "stages": ["ic"], "ic_data": str(data)}, "autoregembed")
        )
        seed_everything(seed)
        prepare_model(backbone, method.config)
        method.prepare(backbone)
        (stage,) = method.stages()
        hooks = Memorisation(stage, backbone, stage_config(method.config, stage), texts, out)
        backbone.model.eval()
        hooks.dev_evaluation(stage.name, 0)
        run_stages(backbone, [stage], method.config, TrainJob(str(data), seed, None), hooks)
    return hooks.points


def main() -> None:
    from harness.model.backbones import backbone_spec, load_backbone
    from harness.runs.process import quiet_libraries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sick", type=Path, help="a SICK file (pair_ID, sentence_A, sentence_B, ...)")
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=25, help="measure every this many steps")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="also append each point as a JSON line here")
    args = parser.parse_args()

    quiet_libraries()
    texts = first_sentences(args.sick, args.texts)
    options = {"lr": args.lr, "ic_steps": args.steps, "eval_every": args.every}
    backbone = load_backbone(backbone_spec(args.backbone))
    memorise(backbone, texts, options, args.seed, args.out)


if __name__ == "__main__":
    main()
