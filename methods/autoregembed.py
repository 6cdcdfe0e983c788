"""AutoRegEmbed (Deng et al., EMNLP 2025): embeddings trained by information compression (IC) and
conditional distribution alignment (CDA). See ../shared/docs/autoregembed.md for the method.

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

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.distributed import mean_across_ranks
from harness.encoder import TokenEncoder
from harness.errors import HarnessError
from harness.method import Method, option
from harness.prompts import STS_INSTRUCTION
from harness.training import TrainConfig

if TYPE_CHECKING:
    import torch

    from harness.backbones import Backbone
    from harness.encoder import EncodeSettings, Encoder

SLOTS_PARAMETER = "autoregembed_slots"
PROMPTED_TEMPLATE = "{text}\n"  # IC rows with a prompt: context, prompt, then the slots


def _no_text_slot(value: str) -> str | None:
    return "must not contain {text} (the text comes before it)" if "{text}" in value else None


def _known_stages(value: list[str]) -> str | None:
    if value and all(stage in ("ic", "cda") for stage in value):
        return None
    return 'must name ic and/or cda (e.g. ["ic", "cda"])'


@dataclass
class AutoRegEmbedConfig(TrainConfig):
    preset: str = option("small", "small (sized for 2 CPU cores) or paper (the paper's settings, for GPUs)")
    stages: list[str] = option(["ic", "cda"], "stages to run in order: ic, cda, or both", check=_known_stages, rule="ic and/or cda")
    slots: int = option(5, "number k of compression slots", minimum=1, maximum=256)
    instruction: str = option(STS_INSTRUCTION, "instruction between the text and the slots", check=_no_text_slot, rule="no {text}")
    beta: float = option(0.1, "CDA beta (scale of log-probability differences)", above=0)
    tau: float = option(0.1, "CDA temperature", above=0)
    reference_sign: Literal["paper", "released"] = option(
        "paper", "paper: m = (a-n) - (ra-rn); released: m = (a-n) + (ra-rn)"
    )
    positive_score: Literal["paper", "logsigmoid", "kl", "js"] = option(
        "paper", "form of s1: sigmoid or log-sigmoid of beta|a-self|, or token-level KL / JS"
    )
    negatives: Literal["joint", "pairwise"] = option("joint", "several negatives: one denominator or mean of pairs")
    ic_data: str = option("", "IC data: context/prompt/answer file, 'pwc' (hub), or '' = autoencode --train-data texts")
    ic_steps: int = option(0, "IC steps (0 = steps)", minimum=0)
    ic_lr: float = option(0.0, "IC learning rate (0 = lr)", minimum=0)
    ic_epochs: float = option(0.0, "IC epochs when steps are 0 (0 = epochs)", minimum=0)
    ic_grad_accum: int = option(0, "IC micro-batches per step (0 = grad_accum)", minimum=0)
    ic_max_examples: int = option(0, "IC examples, a seeded choice (0 = max_examples)", minimum=0)
    cda_steps: int = option(0, "CDA steps (0 = steps)", minimum=0)
    cda_lr: float = option(0.0, "CDA learning rate (0 = lr)", minimum=0)
    cda_epochs: float = option(0.0, "CDA epochs when steps are 0 (0 = epochs)", minimum=0)
    cda_grad_accum: int = option(0, "CDA micro-batches per step (0 = grad_accum)", minimum=0)
    cda_max_examples: int = option(0, "CDA triplets, a seeded choice (0 = max_examples)", minimum=0)

    @property
    def template(self) -> str:
        return "{text}\n" + self.instruction + "\n"


PRESETS: dict[str, dict[str, Any]] = {
    # 2 CPU cores, SmolLM2-135M: the embedded default must finish within 15 minutes. IC reads
    # every text it is given; CDA's reference pass is capped at 240 triplets. CDA runs at the IC
    # rate: on seed 0's IC, half of it (the paper's ratio) lost 2.6 / 3.2 points to IC alone on
    # STS-B dev / SICK trial and the full rate gained 3.1 / 1.3; over three seeds the full rate
    # neither gains nor loses (docs/results.md, "Seeds").
    "small": {
        "finetune": "lora", "lora_r": 16, "lora_alpha": 32, "lr": 2e-4, "batch_size": 8,
        "ic_steps": 40, "cda_steps": 30, "cda_max_examples": 240, "max_length": 64,
    },
    # The doc's reference settings: full fine-tuning, IC lr 1e-5 for 1 epoch, CDA lr 5e-6 for
    # 4 epochs, 5% warm-up, bf16 and gradient checkpointing; global batch 32 for IC (8 x 4
    # accumulation on one GPU) and 128 for CDA (8 x 16); on N GPUs divide the accumulation by N.
    "paper": {
        "finetune": "full", "ic_lr": 1e-5, "ic_epochs": 1.0, "cda_lr": 5e-6, "cda_epochs": 4.0,
        "batch_size": 8, "ic_grad_accum": 4, "cda_grad_accum": 16, "warmup_ratio": 0.05,
        "gradient_checkpointing": True, "bf16": "auto", "max_length": 512, "ic_data": "pwc",
    },
}


# -- the maths, as plain functions ------------------------------------------------------------
def cda_scores(
    a: torch.Tensor, self_lp: torch.Tensor, n: torch.Tensor, ra: torch.Tensor, rn: torch.Tensor,
    *, beta: float, sign: str, s1_form: str = "paper", divergence: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s1 [B], s2 [B, N]) from summed log-probabilities; ``n``/``rn`` are [B, N].

    s1 = sigmoid(beta |a - self|) (``logsigmoid``: softplus(beta |a - self|) = -log sigmoid(-beta
    |a - self|), unbounded, as the authors' code computes it; ``kl``/``js``: sigmoid of beta times
    the per-token mean divergence, given in ``divergence``); s2 = sigmoid(beta m) with
    m = (a - n) - (ra - rn) for the paper's sign and (a - n) + (ra - rn) for the released code's.
    """
    import torch
    import torch.nn.functional as F

    if s1_form in ("kl", "js"):
        if divergence is None:
            raise ValueError("the kl and js forms need the token-level divergence")
        s1 = torch.sigmoid(beta * divergence)
    elif s1_form == "logsigmoid":
        s1 = F.softplus(beta * (a - self_lp).abs())
    else:
        s1 = torch.sigmoid(beta * (a - self_lp).abs())
    reference = (ra.unsqueeze(-1) if ra.dim() == 1 else ra) - rn
    policy = a.unsqueeze(-1) - n
    margin = policy - reference if sign == "paper" else policy + reference
    return s1, torch.sigmoid(beta * margin)


def cda_loss(s1: torch.Tensor, s2: torch.Tensor, *, tau: float, negatives: str = "joint") -> torch.Tensor:
    """Mean over queries of -log(exp(-s1/tau) / (exp(-s1/tau) + sum_i exp(-s2_i/tau))) (``joint``)
    or of the mean of softplus((s1 - s2_i)/tau) (``pairwise``); equal for one negative."""
    import torch
    import torch.nn.functional as F

    if negatives == "pairwise":
        return F.softplus((s1.unsqueeze(-1) - s2) / tau).mean()
    logits = torch.cat([-s1.unsqueeze(-1), -s2], dim=-1) / tau
    return (torch.logsumexp(logits, dim=-1) + s1 / tau).mean()


def compress(model: Any, slots: torch.Tensor, rows: Sequence[Sequence[int]], *, pack: bool) -> torch.Tensor:
    """E (B x k x d): last-layer states at k slots placed right after each row's tokens (position
    ids count the row's own tokens only)."""
    import torch

    from harness.packing import forward_rows, offsets

    k = slots.shape[0]
    tokens = model.get_input_embeddings()(torch.tensor([t for row in rows for t in row], device=slots.device))
    slot_states = slots.to(tokens.dtype)
    pieces = [part for row in tokens.split([len(row) for row in rows]) for part in (row, slot_states)]
    lengths = [len(row) + k for row in rows]
    hidden = forward_rows(model.get_decoder(), torch.cat(pieces), lengths, pack=pack)
    first_slot = torch.tensor([o + len(row) for o, row in zip(offsets(lengths), rows)], device=hidden.device)
    return hidden[first_slot.unsqueeze(1) + torch.arange(k, device=hidden.device)]


def compress_padded(model: Any, slots: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """:func:`compress` of a padded batch (either padding side), run padded."""
    rows = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask)]
    return compress(model, slots, rows, pack=False)


def without_adapter_dropout(model: Any) -> None:
    """Set every LoRA dropout of ``model`` to p = 0 (peft keeps them as ``lora_dropout`` modules)."""
    import torch

    for name, module in model.named_modules():
        if "lora_dropout" in name and isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def slots_of(model: Any) -> torch.Tensor:
    """The slot parameter as ``model`` holds it now (a sharding engine swaps parameters, so a
    reference kept from before training would be stale)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, SLOTS_PARAMETER)


@dataclass
class Scored:
    """Decoder output for a batch of (E, target) pairs."""

    sums: torch.Tensor  # [B] summed log-probability of target tokens + EOS
    tokens: torch.Tensor  # [B] number of target tokens + EOS
    log_probs: torch.Tensor | None  # [B, T, V] full next-token distributions, when asked for
    mask: torch.Tensor  # [B, T]


def score_targets(decoder: Any, compressed: torch.Tensor, targets: Sequence[Sequence[int]], *, pack: bool, full: bool = False) -> Scored:
    """log p(y | E) for each row: the decoder reads E (no BOS) then y; only y's tokens (incl. EOS)
    are scored, never the slot positions, and the LM head runs at those positions only."""
    import torch

    from harness.packing import forward_rows, lm_head, offsets, row_sums

    rows, k, _ = compressed.shape
    device = compressed.device
    flat = torch.tensor([t for row in targets for t in row], device=device)
    embedded = decoder.get_input_embeddings()(flat)
    prefixes = compressed.to(embedded.dtype)
    pieces = [part for prefix, row in zip(prefixes, embedded.split([len(t) for t in targets])) for part in (prefix, row)]
    lengths = [k + len(row) for row in targets]
    hidden = forward_rows(decoder.get_decoder(), torch.cat(pieces), lengths, pack=pack)
    # position k-1+t of a row predicts its target token t
    predicting = torch.cat([torch.arange(o + k - 1, o + k - 1 + len(row)) for o, row in zip(offsets(lengths), targets)])
    log_probs = torch.log_softmax(lm_head(decoder, hidden[predicting.to(device)]).float(), dim=-1)
    counts = [len(row) for row in targets]
    sums = row_sums(log_probs.gather(-1, flat.unsqueeze(-1)).squeeze(-1), counts)
    mask = torch.arange(max(counts), device=device).unsqueeze(0) < torch.tensor(counts, device=device).unsqueeze(1)
    padded = log_probs.new_zeros(mask.shape + log_probs.shape[-1:]).index_put((mask,), log_probs) if full else None
    return Scored(sums, torch.tensor(counts, device=device), padded, mask.long())


def token_divergence(p_self: Scored, p_query: Scored, form: str) -> torch.Tensor:
    """Mean over target positions (1/T, as the paper defines S) of KL(p(.|E_d+) || p(.|E_q)) or
    of their JS divergence."""
    import torch

    lp, lq = p_self.log_probs, p_query.log_probs
    if form == "kl":
        per_token = (lp.exp() * (lp - lq)).sum(-1)
    else:
        lm = torch.logaddexp(lp, lq) - torch.log(torch.tensor(2.0, device=lp.device))
        per_token = 0.5 * ((lp.exp() * (lp - lm)).sum(-1) + (lq.exp() * (lq - lm)).sum(-1))
    return (per_token * p_self.mask).sum(1) / p_self.mask.sum(1)


# -- stages -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ICExample:
    context: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class CDAExample:
    query: str
    pos: str
    neg: str
    ref_pos: float = 0.0  # lp_ref(d+ | E_q), filled in when the stage begins
    ref_neg: float = 0.0  # lp_ref(d- | E_q)


class _Parts:
    """What both stages need: the prompt tokenizer, targets, the encoder and the frozen decoder."""

    def __init__(self, method: AutoRegEmbed) -> None:
        self.method = method

    @property
    def config(self) -> AutoRegEmbedConfig:
        return self.method.config

    def encode(
        self, model: Any, tokenizer: Any, texts: Sequence[str], config: TrainConfig, templates: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """E for each text under the method's template (or, per row, ``templates``)."""
        from harness.encoder import PromptTokenizer

        templates = templates or [self.config.template] * len(texts)
        tokenizers = {t: PromptTokenizer(tokenizer, t, config.max_length) for t in set(templates)}
        rows = [tokenizers[t]([text])[0] for text, t in zip(texts, templates)]
        return compress(model, slots_of(model), rows, pack=config.pack)

    @property
    def overrides(self) -> dict[str, Any]:
        """This stage's own steps / lr / epochs / accumulation / example cap (``ic_*`` or ``cda_*``),
        where set."""
        keys = ("steps", "lr", "epochs", "grad_accum", "max_examples")
        values = {key: getattr(self.config, f"{self.name}_{key}") for key in keys}
        return {key: value for key, value in values.items() if value}

    def targets(self, tokenizer: Any, texts: Sequence[str], config: TrainConfig) -> list[list[int]]:
        rows = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [row[: config.max_length - 1] + [tokenizer.eos_token_id] for row in rows]


class ICStage(_Parts):
    """Information compression: the frozen decoder must produce the answer from E alone.

    A seeded tenth of the rows (at most ``IC_HELD_OUT``) is kept out of training; when the stage
    ends, :meth:`diagnose` measures the decoder's loss on them with their own slots, with another
    row's slots and with no slots at all.
    """

    name = "ic"

    def __init__(self, method: AutoRegEmbed) -> None:
        super().__init__(method)
        self.held_out: list[ICExample] = []

    def examples(self, source: str, seed: int) -> Sequence[ICExample]:
        self.held_out, kept = split_held_out(ic_examples(self.config.ic_data, source, seed), seed)
        return kept

    def diagnose(self, model: Any, tokenizer: Any, config: Any) -> tuple[dict[str, float], list[str]]:
        """Held-out IC loss (nats per answer token, EOS included) with each row's own slots, with
        the previous row's slots (a fixed derangement) and with an empty prefix (the decoder reads
        only a BOS token, or EOS where the tokenizer has no BOS)."""
        import torch

        rows = self.held_out
        if len(rows) < 2:
            return {}, []
        texts, templates = self.inputs(rows)
        targets = self.targets(tokenizer, [e.answer for e in rows], config)
        step = config.batch_size
        compressed = torch.cat([
            self.encode(model, tokenizer, texts[i : i + step], config, templates[i : i + step]) for i in range(0, len(rows), step)
        ])
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        with self.method.decoding(model) as decoder:
            empty = decoder.get_input_embeddings()(torch.tensor([[start]], device=compressed.device)).expand(len(rows), 1, -1)
            values = {
                f"heldout_loss_{name}": heldout_loss(decoder, prefix, targets, step, pack=config.pack)
                for name, prefix in (("own", compressed), ("shuffled", compressed.roll(1, dims=0)), ("empty", empty))
            }
        values["heldout_texts"] = float(len(rows))
        return values, ic_warnings(values)

    def inputs(self, batch: Sequence[ICExample]) -> tuple[list[str], list[str]]:
        """Encoder texts and templates: a prompted row (PwC) reads context and prompt, then the
        slots, with no STS instruction; an autoencoded text reads the method's STS template."""
        texts = [f"{e.context}\n{e.prompt}" if e.prompt else e.context for e in batch]
        return texts, [PROMPTED_TEMPLATE if e.prompt else self.config.template for e in batch]

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[ICExample], config: Any) -> tuple[Any, int]:
        texts, templates = self.inputs(batch)
        compressed = self.encode(model, tokenizer, texts, config, templates)
        with self.method.decoding(model) as decoder:
            scored = score_targets(decoder, compressed, self.targets(tokenizer, [e.answer for e in batch], config), pack=config.pack)
        tokens = int(scored.tokens.sum())
        # per token over the global batch: divide by the ranks' mean token count, so that the
        # mean over ranks of this loss is the global token mean (1 process: its own count)
        return -scored.sums.sum() / mean_across_ranks(float(tokens)), tokens


class CDAStage(_Parts):
    """Conditional distribution alignment on (query, positive, hard negative) triplets.

    LoRA dropout is switched off for the stage: the reference log-probabilities are computed
    without it, and with it the margin (a - n) - (ra - rn) is not 0 at step 0, so s2 starts away
    from 0.5 by noise alone.
    """

    name = "cda"

    def __init__(self, method: AutoRegEmbed) -> None:
        super().__init__(method)
        self.dropout_off = False

    def examples(self, source: str, seed: int) -> Sequence[CDAExample]:
        from harness.train_data import load_triplets

        return [CDAExample(t.query, t.pos, t.neg) for t in load_triplets(source, seed)]

    def begin(self, model: Any, tokenizer: Any, examples: Sequence[CDAExample], config: Any) -> list[CDAExample]:
        """Reference log-probabilities from the encoder as it is now, once per example."""
        import torch

        done = []
        with torch.no_grad():  # not inference_mode: sharding engines reuse gathered tensors in training
            for start in range(0, len(examples), config.batch_size):
                chunk = examples[start : start + config.batch_size]
                compressed = self.encode(model, tokenizer, [e.query for e in chunk], config)
                targets = self.targets(tokenizer, [e.pos for e in chunk] + [e.neg for e in chunk], config)
                with self.method.decoding(model) as decoder:
                    sums = score_targets(decoder, torch.cat([compressed, compressed]), targets, pack=config.pack).sums
                for i, e in enumerate(chunk):
                    done.append(replace(e, ref_pos=float(sums[i]), ref_neg=float(sums[len(chunk) + i])))
        return done

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[CDAExample], config: Any) -> tuple[Any, int]:
        if not self.dropout_off:  # once per process, so a resumed stage trains the same way
            without_adapter_dropout(model)
            self.dropout_off = True
        s1, s2, tokens = self.scores(model, tokenizer, batch, config)
        return cda_loss(s1, s2, tau=self.config.tau, negatives=self.config.negatives), tokens

    def scores(self, model: Any, tokenizer: Any, batch: Sequence[CDAExample], config: Any) -> tuple[Any, Any, int]:
        """(s1, s2, tokens) of a batch: one encoder pass for queries and positives, E_q reused for
        the negative, and the three decoder passes run as one batch."""
        import torch

        c = self.config
        b = len(batch)
        compressed = self.encode(model, tokenizer, [e.query for e in batch] + [e.pos for e in batch], config)
        e_q, e_pos = compressed[:b], compressed[b:]
        targets = self.targets(tokenizer, [e.pos for e in batch] * 2 + [e.neg for e in batch], config)
        full = c.positive_score in ("kl", "js")
        with self.method.decoding(model) as decoder:
            scored = score_targets(decoder, torch.cat([e_q, e_pos, e_q]), targets, pack=config.pack, full=full)
        a, self_lp, n = scored.sums[:b], scored.sums[b : 2 * b], scored.sums[2 * b :]
        divergence = None
        if full:
            halves = [Scored(scored.sums[s], scored.tokens[s], scored.log_probs[s], scored.mask[s]) for s in (slice(b, 2 * b), slice(0, b))]
            divergence = token_divergence(halves[0], halves[1], c.positive_score)
        ref = torch.tensor([[e.ref_pos, e.ref_neg] for e in batch], dtype=a.dtype, device=a.device)
        s1, s2 = cda_scores(a, self_lp, n.unsqueeze(-1), ref[:, 0], ref[:, 1:], beta=c.beta, sign=c.reference_sign, s1_form=c.positive_score, divergence=divergence)
        return s1, s2, int(scored.tokens.sum())


IC_HELD_OUT = 64  # at most this many IC rows are held out for the stage's diagnostics
IC_MARGIN = 0.05  # nats/token by which the own-slot loss must beat both baselines


def split_held_out(rows: Sequence[ICExample], seed: int) -> tuple[list[ICExample], list[ICExample]]:
    """(held out, kept): a seeded tenth of the rows, at most ``IC_HELD_OUT``, none under 20 rows."""
    import random

    count = min(IC_HELD_OUT, len(rows) // 10)
    chosen = set(random.Random(seed).sample(range(len(rows)), count)) if count >= 2 else set()
    return [r for i, r in enumerate(rows) if i in chosen], [r for i, r in enumerate(rows) if i not in chosen]


def heldout_loss(decoder: Any, prefixes: torch.Tensor, targets: Sequence[Sequence[int]], step: int, *, pack: bool) -> float:
    """Token-mean negative log-likelihood of ``targets`` after ``prefixes``, in batches of ``step``."""
    total = tokens = 0.0
    for i in range(0, len(targets), step):
        scored = score_targets(decoder, prefixes[i : i + step], targets[i : i + step], pack=pack)
        total -= float(scored.sums.sum())
        tokens += float(scored.tokens.sum())
    return total / tokens


def ic_warnings(values: dict[str, float]) -> list[str]:
    """A warning when the own-slot loss is not clearly (``IC_MARGIN``) below both baselines."""
    own, shuffled, empty = (values[f"heldout_loss_{n}"] for n in ("own", "shuffled", "empty"))
    if own < min(shuffled, empty) - IC_MARGIN:
        return []
    return [
        f"warning: after IC the held-out loss with each text's own slots ({own:.2f} nats/token) is not "
        f"clearly below that with another text's slots ({shuffled:.2f}) and with no slots ({empty:.2f}): "
        "the slots do not carry the text yet, so CDA starts from embeddings that know little of it and "
        "the scores will likely trail untrained baselines. Train IC longer or on more text "
        "(docs/autoregembed.md; docs/results.md measures both)."
    ]


def ic_examples(ic_data: str, train_data: str, seed: int) -> list[ICExample]:
    """IC rows: a context/prompt/answer file, PwC from the hub, or (default) autoencoding: each
    distinct query and positive text of the training triplets is its own answer."""
    if ic_data == "pwc":
        return _pwc()
    if ic_data:
        return _ic_file(Path(ic_data))
    from harness.train_data import load_triplets

    texts = dict.fromkeys(text for t in load_triplets(train_data, seed) for text in (t.query, t.pos))
    return [ICExample(text, "", text) for text in texts]


def _ic_file(path: Path) -> list[ICExample]:
    from harness.records import read_rows, text_cell

    kind = "IC data file"
    table = read_rows(path, (".jsonl", ".csv", ".tsv", ".txt"), kind)
    table.require(path, ("context", "answer"), kind)
    return [
        ICExample(
            text_cell(path, line, row, "context", kind),
            str(row.get("prompt") or ""),
            text_cell(path, line, row, "answer", kind),
        )
        for line, row in table.rows
    ]


def _pwc() -> list[ICExample]:
    from datasets import load_dataset

    from harness.train_data import require_hub_data

    require_hub_data("sggetao/PwC", "ic_data 'pwc'")
    try:
        data = load_dataset("sggetao/PwC", split="train")
    except (ConnectionError, OSError) as exc:
        raise HarnessError(f"ic_data 'pwc' loads sggetao/PwC from the hub, which failed here: {exc}.") from None
    return unique_contexts(ICExample(r["input"], r["prompt"], r["answer"]) for r in data)


def unique_contexts(rows: Iterable[ICExample]) -> list[ICExample]:
    """The first row of each distinct context, in order. PwC repeats every context under many
    prompts (~241k rows); the paper trains on its 16,382 unique rows, which this rule is meant to
    give (not checked here: the set needs the hub)."""
    seen: dict[str, ICExample] = {}
    for row in rows:
        seen.setdefault(row.context, row)
    return list(seen.values())


# -- the encoder and the method -----------------------------------------------------------------
class SlotEncoder(TokenEncoder):
    """Mean of the k compressed tokens, L2-normalised."""

    def __init__(self, backbone: Backbone, slots: torch.Tensor, settings: EncodeSettings, template: str) -> None:
        super().__init__(
            backbone.tokenizer, embed_dim=backbone.model.config.hidden_size, device=backbone.device,
            settings=settings, template=template,
        )
        self.model, self.slots = backbone.model, slots

    def embed_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return F.normalize(compress_padded(self.model, self.slots, input_ids, attention_mask).float().mean(dim=1), dim=-1)


class AutoRegEmbed(Method):
    """Information compression, then conditional distribution alignment, on one encoder."""

    Config = AutoRegEmbedConfig
    summary = "AutoRegEmbed: k compression slots; IC then CDA through the frozen decoder"
    presets = PRESETS
    own_parameters = True  # the slots: finetune=frozen trains them alone

    def __init__(self, config: AutoRegEmbedConfig) -> None:
        super().__init__(config)
        unknown = [s for s in config.stages if s not in ("ic", "cda")]
        if unknown or not config.stages:
            raise HarnessError(f"method_args.stages {config.stages}: choose from ic, cda (e.g. [\"ic\", \"cda\"]).")
        self.slots: Any = None
        self.frozen: Any = None

    def stages(self) -> Sequence[Any]:
        table = {"ic": ICStage, "cda": CDAStage}
        return [table[name](self) for name in self.config.stages]

    def closing_notes(self) -> list[str]:
        if self.config.preset != "small":
            return []
        return [
            "note: the small preset trains a 135M model for minutes on 2 CPU cores. At this scale "
            "AutoRegEmbed scores below the untrained last-token baseline with its own template: its "
            "IC stage is far too short for the slots to carry the text (the IC diagnostics above say "
            "how far). docs/results.md measures the gap, with the commands; run the baseline beside "
            "it with `harness run --method untrained-last --set method_args.preset=autoregembed` and "
            "`harness compare`."
        ]

    def check_inputs(self, train_data: str, seed: int) -> None:
        """The triplets, and the IC data file or hub set when one is named."""
        super().check_inputs(train_data, seed)
        if "ic" in self.config.stages and self.config.ic_data == "pwc":
            from harness.train_data import require_hub_data

            require_hub_data("sggetao/PwC", "ic_data 'pwc'")
        elif "ic" in self.config.stages and self.config.ic_data:
            _ic_file(Path(self.config.ic_data))

    def prepare(self, backbone: Backbone) -> None:
        """Add the k slot vectors (trainable) and, for full fine-tuning, a frozen decoder copy."""
        import torch

        model = backbone.model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        weight = base.get_input_embeddings().weight.detach()
        # as the authors' new special tokens start: the mean token embedding, in every slot
        init = weight.float().mean(0).expand(self.config.slots, -1).clone()
        base.register_parameter(SLOTS_PARAMETER, torch.nn.Parameter(init.to(weight.dtype)))
        self.slots = slots_of(model)
        if self.config.finetune == "full" and self.stages():
            self.frozen = copy.deepcopy(base).eval().requires_grad_(False)

    @contextlib.contextmanager
    def decoding(self, model: Any):
        """The frozen original model: adapters disabled (LoRA), the frozen copy (full) or the model
        itself (frozen).

        With LoRA the decoder pass is never activation-checkpointed: a checkpointed layer is
        recomputed during backward, when the adapters are enabled again, and would silently give
        the adapted model's gradients instead of the frozen decoder's.
        """
        if self.frozen is not None:
            yield self.frozen
        elif hasattr(model, "disable_adapter"):
            layers = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False)]
            for layer in layers:
                layer.gradient_checkpointing = False
            try:
                with model.disable_adapter():
                    yield model
            finally:
                for layer in layers:
                    layer.gradient_checkpointing = True
        else:
            yield model

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        return SlotEncoder(backbone, self.slots, settings, self.config.template)
