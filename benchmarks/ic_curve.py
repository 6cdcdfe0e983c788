"""How an AutoRegEmbed IC stage changes the embedding as it trains: held-out IC diagnostics and
dev-split scores at every checkpoint of one run of the shared training loop.

    python benchmarks/ic_curve.py --train-data SOURCE --tasks FILE [--tasks FILE] [--every 100]
        [--set method_args.KEY=VALUE ...] [--seed 0] [--out curve.jsonl]

The run is `harness run --method autoregembed --set 'method_args.stages=["ic"]'` with the same
options (preset, seed, data, schedule), trained by the same loop; instead of being recorded, it is
measured at step 0 and at every ``--every`` steps (a checkpoint, saved to a scratch folder): the
held-out IC losses with own / shuffled slots / no prefix (nats per token), and per STS file the
Spearman x100 of the method's embeddings, raw and centred (benchmarks/embedding_geometry.py), with
the mean cosine of unrelated pairs. Measuring in eval mode draws no random numbers, so the
training is the one an unmeasured run does. Analysis only: nothing is recorded in a leaderboard.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedding_geometry import geometry  # noqa: E402


def main() -> None:
    import numpy as np
    import torch

    from harness.model.backbones import load_backbone
    from harness.config import load_run_config
    from harness.encoder import EncodeSettings
    from harness.runs.plan import plan_run
    from harness.runs.process import seed_everything
    from harness.data.task_files import read_sts_file
    from harness.training.config import Hooks
    from harness.training.loop import TrainJob, run_stages
    from harness.training.parameters import prepare_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--tasks", action="append", required=True, help="STS .tsv files (sentence1, sentence2, score)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="method_args.KEY=VALUE, as harness run")
    parser.add_argument("--every", type=int, default=100, help="measure every this many steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="also append each measurement as a JSON line here")
    args = parser.parse_args()

    options = {"method": "autoregembed", "train_data": args.train_data, "seed": args.seed, "tasks": args.tasks}
    sets = [*args.sets, 'method_args.stages=["ic"]', f"method_args.checkpoint_every={args.every}"]
    plan = plan_run(load_run_config(options=options, sets=sets))
    files = {Path(f).stem: read_sts_file(Path(f)) for f in args.tasks}
    seed_everything(plan.config.seed)
    backbone = load_backbone(plan.backbone, plan.config.device, plan.config.dtype, None)
    method = plan.method
    prepare_model(backbone, method.config)
    method.prepare(backbone)
    stages = method.stages()
    ic = stages[0]
    ic.examples(plan.config.train_data, plan.config.seed)  # the held-out rows, as the loop will draw them
    encoder = method.build_encoder(backbone, EncodeSettings(batch_size=plan.config.batch_size, max_length=plan.config.max_length))

    def measure(step: int) -> None:
        model = backbone.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            figures, _ = ic.diagnose(model, backbone.tokenizer, method.config)
        row = {"step": step, **{k.removeprefix("heldout_loss_"): round(v, 4) for k, v in figures.items() if k != "heldout_texts"}}
        for name, pairs in files.items():
            gold = np.array(pairs.scores)
            shape = geometry(encoder.encode(pairs.sentence1 + pairs.sentence2), len(gold), gold)
            row[name] = {k: round(v, 4 if "cos" in k else 2) for k, v in shape.items()}
        model.train(was_training)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps(row) + "\n")

    class Measure(Hooks):
        step = 0

        def steps(self, stage, logs) -> None:
            self.step = logs[-1].step
            print(f"{stage} step {self.step}: loss {logs[-1].loss:.4f}", flush=True)

        def checkpoint(self, path: Path) -> None:
            measure(self.step)

    measure(0)
    with tempfile.TemporaryDirectory() as scratch:
        run_stages(backbone, stages, method.config, TrainJob(plan.config.train_data, plan.config.seed, Path(scratch)), Measure())


if __name__ == "__main__":
    main()
