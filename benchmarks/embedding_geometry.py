"""How much of a recorded run's embedding is shared by every text (anisotropy), on an STS file.

For each run: the mean cosine of unrelated pairs (each first sentence against the next pair's
second sentence), the mean cosine of the file's own pairs, the Spearman x100 of the raw cosines,
and the Spearman after removing the mean embedding of the file's sentences (centering: what the
score would be without the shared direction). Analysis only: nothing is recorded.

    python benchmarks/embedding_geometry.py --db harness.db --tasks dev-tasks/stsb-dev.tsv 3 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def geometry(embeddings, pairs: int, gold) -> dict[str, float]:
    """Figures for an array of 2*pairs rows (first sentences, then second sentences); rows are
    L2-normalised first, so dot products are cosines whatever the encoder returns."""
    import numpy as np
    from scipy.stats import spearmanr

    embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    first, second = embeddings[:pairs], embeddings[pairs:]
    own = (first * second).sum(1)
    unrelated = (first * np.roll(second, 1, axis=0)).sum(1)
    centred = embeddings - embeddings.mean(0)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    own_centred = (centred[:pairs] * centred[pairs:]).sum(1)
    return {
        "unrelated_cos": float(unrelated.mean()),
        "pair_cos": float(own.mean()),
        "spearman": 100 * float(spearmanr(own, gold).statistic),
        "spearman_centred": 100 * float(spearmanr(own_centred, gold).statistic),
    }


def main() -> None:
    import numpy as np
    from rich.console import Console

    from harness.data.task_files import read_sts_file
    from harness.encoder import EncodeSettings
    from harness.runs.plan import plan_run, recorded_config
    from harness.runs.restore import encoding_backbone
    from leaderboard.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int, nargs="+")
    parser.add_argument("--db", default="harness.db")
    parser.add_argument("--tasks", required=True, help="an STS .tsv file (sentence1, sentence2, score)")
    args = parser.parse_args()
    store, console = open_store(args.db, create=False), Console(stderr=True)
    pairs = read_sts_file(Path(args.tasks))
    texts, gold = pairs.sentence1 + pairs.sentence2, np.array(pairs.scores)
    print("| run | method | unrelated pairs cos | STS pairs cos | Spearman | Spearman, centred |")
    print("|---|---|---|---|---|---|")
    for run_id in args.runs:
        record = store.get_run(run_id)
        plan = plan_run(recorded_config(record))
        method = plan.method
        backbone = encoding_backbone(plan, record, console, purpose="evaluate")
        encoder = method.build_encoder(
            backbone, EncodeSettings(batch_size=plan.config.eval_batch_size, max_length=plan.config.max_length)
        )
        figures = geometry(encoder.encode(texts), len(gold), gold)
        print(
            f"| #{run_id} | {record['method']} | {figures['unrelated_cos']:.3f} | {figures['pair_cos']:.3f} "
            f"| {figures['spearman']:.2f} | {figures['spearman_centred']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
