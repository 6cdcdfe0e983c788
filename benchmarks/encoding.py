"""Encoding throughput on SmolLM2 over ~2,000 STS sentences, side by side in one run:
the harness encoder against (a) a plain transformers loop in input order with the same batch size
and (b) sentence-transformers wrapping the same backbone with mean pooling.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python benchmarks/encoding.py [--repeats 3]

All three run on the same model weights (the cached dequantised SmolLM2), in fp32, with torch's
default threads; medians over repeats taken in turn; embeddings compared to 1e-5.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.released_data import STSB_DEV, add_option, released, use  # noqa: E402


def sentences(n: int) -> list[str]:
    stsb = released(STSB_DEV)
    if stsb:
        with stsb.open(encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        texts = [t for row in rows for t in (row[5], row[6])]
    else:
        from harness.data.train_data import offline_triplets

        texts = [t for tr in offline_triplets() for t in (tr.query, tr.pos)]
    return texts[:n]


def _without_chat_template(folder: str) -> str:
    """A copy of the model folder without its chat template: sentence-transformers would otherwise
    wrap every text in SmolLM2's chat prompt, which is not the same input."""
    import json
    import shutil
    import tempfile

    copy = Path(tempfile.mkdtemp()) / "smollm2"
    shutil.copytree(folder, copy)
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    config_path = copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config))
    return str(copy)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    add_option(parser)
    args = parser.parse_args()
    use(args)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.encoder import EncodeSettings, PooledEncoder
    from harness.model.backbones import _smollm2_folder

    folder = str(_smollm2_folder())
    texts = sentences(args.texts)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    harness_encoder = PooledEncoder(
        model, tokenizer, pooling="mean", settings=EncodeSettings(batch_size=args.batch, max_length=512)
    )
    body = model.get_decoder()

    def plain() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), args.batch):
                batch = tokenizer(texts[start : start + args.batch], padding=True, return_tensors="pt")
                hidden = body(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
        return np.concatenate(out)

    st_model = SentenceTransformer(
        modules=[models.Transformer(_without_chat_template(folder)), models.Pooling(576, "mean")], device="cpu"
    )

    def sbert() -> np.ndarray:
        return st_model.encode(texts, batch_size=args.batch, convert_to_numpy=True, show_progress_bar=False)

    runs = {"harness": lambda: harness_encoder.encode(texts), "plain loop": plain, "sentence-transformers": sbert}
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    tokens = sum(len(r) for r in tokenizer(texts)["input_ids"])
    print(f"{len(texts)} texts, {tokens} tokens, batch {args.batch}, torch threads {torch.get_num_threads()}")
    reference = outputs["harness"]
    for name, seconds in medians.items():
        diff = np.abs(outputs[name] - reference)
        relative = float((diff / np.maximum(np.abs(reference), 1.0)).max())
        print(
            f"  {name:22} {seconds:7.2f} s  {len(texts) / seconds:7.1f} texts/s  harness speed-up "
            f"{seconds / medians['harness']:.2f}x  max |diff| {float(diff.max()):.1e} (relative {relative:.1e})"
        )


if __name__ == "__main__":
    main()
