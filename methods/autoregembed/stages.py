"""AutoRegEmbed's two stages on the shared loop: information compression (IC), then conditional distribution alignment (CDA)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.data.train_data import load_triplets
from harness.encoder import PromptTokenizer
from harness.method import set_only
from harness.training.distributed import mean_across_ranks
from methods.autoregembed.config import PROMPTED_TEMPLATE, AutoRegEmbedConfig
from methods.autoregembed.data import CDAExample, ICExample, ic_examples, split_held_out
from methods.autoregembed.maths import (
    Scored,
    cda_loss,
    cda_scores,
    compress,
    heldout_loss,
    score_targets,
    slots_of,
    token_divergence,
    without_adapter_dropout,
)

if TYPE_CHECKING:
    import torch

    from methods.autoregembed.method import AutoRegEmbed


class SlotStage:
    """What both stages need: the prompt tokenizer, targets, the encoder and the frozen decoder.

    Every option a stage uses comes from the ``config`` the loop passes: the method's options with
    the stage's ``overrides`` (``ic_lr``, ``cda_steps``, ...) applied.
    """

    def __init__(self, method: AutoRegEmbed) -> None:
        self.method = method

    def encode(
        self,
        model: Any,
        tokenizer: Any,
        texts: Sequence[str],
        config: AutoRegEmbedConfig,
        templates: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """E for each text under the method's template (or, per row, ``templates``)."""

        templates = templates or [config.template] * len(texts)
        tokenizers = {t: PromptTokenizer(tokenizer, t, config.max_length) for t in set(templates)}
        rows = [tokenizers[t]([text])[0] for text, t in zip(texts, templates)]
        return compress(model, slots_of(model), rows, pack=config.pack)

    def targets(self, tokenizer: Any, texts: Sequence[str], config: AutoRegEmbedConfig) -> list[list[int]]:
        rows = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [row[: config.max_length - 1] + [tokenizer.eos_token_id] for row in rows]


class ICStage(SlotStage):
    """Information compression: the frozen decoder must produce the answer from E alone.

    A seeded tenth of the rows (at most ``IC_HELD_OUT``) is kept out of training; when the stage
    ends, :meth:`diagnose` measures the decoder's loss on them with their own slots, with another
    row's slots and with no slots at all.
    """

    name = "ic"

    def __init__(self, method: AutoRegEmbed) -> None:
        super().__init__(method)
        self.held_out: list[ICExample] = []

    @property
    def overrides(self) -> dict[str, Any]:
        """The IC stage's own training options, where set (0 keeps the method's)."""
        c = self.method.config
        return set_only(
            steps=c.ic_steps,
            lr=c.ic_lr,
            epochs=c.ic_epochs,
            grad_accum=c.ic_grad_accum,
            max_examples=c.ic_max_examples,
        )

    def examples(self, source: str, seed: int) -> Sequence[ICExample]:
        self.held_out, kept = split_held_out(ic_examples(self.method.config.ic_data, source, seed), seed)
        return kept

    def diagnose(self, model: Any, tokenizer: Any, config: Any) -> tuple[dict[str, float], list[str]]:
        """Held-out IC loss (nats per answer token, EOS included) with each row's own slots, with
        the previous row's slots (a fixed derangement) and with an empty prefix (the decoder reads
        only a BOS token, or EOS where the tokenizer has no BOS)."""
        import torch

        rows = self.held_out
        if len(rows) < 2:
            return {}, []
        texts, templates = self.inputs(rows, config)
        targets = self.targets(tokenizer, [e.answer for e in rows], config)
        step = config.batch_size
        compressed = torch.cat(
            [
                self.encode(model, tokenizer, texts[i : i + step], config, templates[i : i + step])
                for i in range(0, len(rows), step)
            ]
        )
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        with self.method.decoding(model) as decoder:
            empty = decoder.get_input_embeddings()(torch.tensor([[start]], device=compressed.device)).expand(
                len(rows), 1, -1
            )
            values = {
                f"heldout_loss_{name}": heldout_loss(decoder, prefix, targets, step, pack=config.pack)
                for name, prefix in (("own", compressed), ("shuffled", compressed.roll(1, dims=0)), ("empty", empty))
            }
        values["heldout_texts"] = float(len(rows))
        return values, ic_warnings(values)

    def inputs(self, batch: Sequence[ICExample], config: AutoRegEmbedConfig) -> tuple[list[str], list[str]]:
        """Encoder texts and templates: a prompted row (PwC) reads context and prompt, then the
        slots, with no STS instruction; an autoencoded text reads the method's STS template."""
        texts = [f"{e.context}\n{e.prompt}" if e.prompt else e.context for e in batch]
        return texts, [PROMPTED_TEMPLATE if e.prompt else config.template for e in batch]

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[ICExample], config: Any) -> tuple[Any, int]:
        texts, templates = self.inputs(batch, config)
        compressed = self.encode(model, tokenizer, texts, config, templates)
        with self.method.decoding(model) as decoder:
            scored = score_targets(
                decoder, compressed, self.targets(tokenizer, [e.answer for e in batch], config), pack=config.pack
            )
        tokens = int(scored.tokens.sum())
        # per token over the global batch: divide by the ranks' mean token count, so that the
        # mean over ranks of this loss is the global token mean (1 process: its own count)
        return -scored.sums.sum() / mean_across_ranks(float(tokens)), tokens


class CDAStage(SlotStage):
    """Conditional distribution alignment on (query, positive, hard negative) triplets.

    LoRA dropout is switched off for the stage: the reference log-probabilities are computed
    without it, and with it the margin (a - n) - (ra - rn) is not 0 at step 0, so s2 starts away
    from 0.5 by noise alone.
    """

    name = "cda"

    def __init__(self, method: AutoRegEmbed) -> None:
        super().__init__(method)
        self.dropout_off = False

    @property
    def overrides(self) -> dict[str, Any]:
        """The CDA stage's own training options, where set (0 keeps the method's)."""
        c = self.method.config
        return set_only(
            steps=c.cda_steps,
            lr=c.cda_lr,
            epochs=c.cda_epochs,
            grad_accum=c.cda_grad_accum,
            max_examples=c.cda_max_examples,
        )

    def examples(self, source: str, seed: int) -> Sequence[CDAExample]:
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
        return cda_loss(s1, s2, tau=config.tau, negatives=config.negatives), tokens

    def scores(self, model: Any, tokenizer: Any, batch: Sequence[CDAExample], config: Any) -> tuple[Any, Any, int]:
        """(s1, s2, tokens) of a batch: one encoder pass for queries and positives, E_q reused for
        the negative, and the three decoder passes run as one batch."""
        import torch

        c = config
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
            halves = [
                Scored(scored.sums[s], scored.tokens[s], scored.log_probs[s], scored.mask[s])
                for s in (slice(b, 2 * b), slice(0, b))
            ]
            divergence = token_divergence(halves[0], halves[1], c.positive_score)
        ref = torch.tensor([[e.ref_pos, e.ref_neg] for e in batch], dtype=a.dtype, device=a.device)
        s1, s2 = cda_scores(
            a,
            self_lp,
            n.unsqueeze(-1),
            ref[:, 0],
            ref[:, 1:],
            beta=c.beta,
            sign=c.reference_sign,
            s1_form=c.positive_score,
            divergence=divergence,
        )
        return s1, s2, int(scored.tokens.sum())


IC_MARGIN = 0.05  # nats/token by which the own-slot loss must beat both baselines


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
