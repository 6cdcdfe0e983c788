"""AutoRegEmbed (Deng et al., EMNLP 2025): embeddings trained by information compression (IC) and
conditional distribution alignment (CDA). See docs/autoregembed.md for the method.

Embedding: ``[BOS?] text "\\n" instruction "\\n"`` followed by k learned compression slots; the
last-layer states at the slots are the compressed tokens E (k x d); their mean, L2-normalised, is the
sentence embedding. One template serves training and evaluation.

Decoder: the frozen original model reads E as input embeddings followed by a target's tokens and
EOS; ``lp(y|E)`` sums the log-probabilities of the target tokens and EOS. With LoRA the decoder is
the same base model with the adapters disabled (no second copy); with full fine-tuning a frozen
copy of the original model is kept, which costs one more model's weights in memory; with
``finetune=frozen`` only the slots train and the model itself is the decoder.

Cheaper than the reference layout without changing the maths: one encoder pass per step for q and
d+ together, E_q reused for the negative, the three decoder passes of a CDA step in one batch,
logits only at target positions, and reference log-probabilities computed once per example at the
start of CDA (kept beside the checkpoints for a resume).
"""

from methods.autoregembed.config import PRESETS, SLOTS_FILE, SLOTS_PARAMETER, AutoRegEmbedConfig
from methods.autoregembed.data import CDAExample, ICExample, ic_examples, split_held_out, unique_contexts
from methods.autoregembed.maths import (
    Scored,
    cda_loss,
    cda_scores,
    compress,
    compress_padded,
    score_targets,
    slots_of,
    token_divergence,
)
from methods.autoregembed.method import AutoRegEmbed, SlotEncoder
from methods.autoregembed.stages import CDAStage, ICStage, ic_warnings

__all__ = [
    "PRESETS",
    "SLOTS_FILE",
    "SLOTS_PARAMETER",
    "AutoRegEmbed",
    "AutoRegEmbedConfig",
    "CDAExample",
    "CDAStage",
    "ICExample",
    "ICStage",
    "Scored",
    "SlotEncoder",
    "cda_loss",
    "cda_scores",
    "compress",
    "compress_padded",
    "ic_examples",
    "ic_warnings",
    "score_targets",
    "slots_of",
    "split_held_out",
    "token_divergence",
    "unique_contexts",
]
