"""mteb evaluation of the Lee document task with the adapter's text memo against without it.

    .venv/bin/python benchmarks/mteb_memo.py

mteb's STS evaluator encodes every row of both columns: Lee's 1,225 pairs are 2,450 encodings of 50
documents. One evaluation each way (untrained-mean on SmolLM2), same scores required; wall-time
ratio reported.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import mteb
    import numpy as np

    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.evaluation.mteb_adapter import MtebEncoder, model_meta
    from harness.evaluation.tasks import build_mteb_task, resolve_tasks
    from harness.model.backbones import backbone_spec, load_backbone

    backbone = load_backbone(backbone_spec("smollm2-135m"))
    encoder = PooledEncoder(backbone.model, backbone.tokenizer, pooling="mean", settings=EncodeSettings())
    meta = model_meta(
        name="harness/bench__smollm2",
        revision="bench",
        n_parameters=backbone.n_parameters,
        embed_dim=576,
        max_tokens=512,
        source="bench",
    )

    class Unmemoised(MtebEncoder):
        def encode(self, inputs, **kwargs):  # every text through the model, as without the memo
            texts = [t for batch in inputs for t in batch["text"]]
            self.requested += len(texts)
            self.computed += len(texts)
            return self.encoder.encode(texts)

    (spec,) = [s for s in resolve_tasks(["offline"]) if s.name == "LeeDocSimilarity"]
    results = {}
    for name, adapter in (("memo", MtebEncoder(encoder, meta)), ("no memo", Unmemoised(encoder, meta))):
        start = time.perf_counter()
        result = mteb.evaluate(adapter, build_mteb_task(spec), cache=None, show_progress_bar=False)
        seconds = time.perf_counter() - start
        results[name] = (
            seconds,
            result.task_results[0].scores["test"][0]["main_score"],
            adapter.computed,
            adapter.requested,
        )
    for name, (seconds, score, computed, requested) in results.items():
        print(
            f"  {name:8} {seconds:7.1f} s  cosine_spearman {score:.6f}  encoded {computed} of {requested} requested texts"
        )
    (fast, a, *_), (slow, b, *_) = results["memo"], results["no memo"]
    assert np.isclose(a, b, atol=1e-6), (a, b)
    print(f"speed-up from the memo: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
