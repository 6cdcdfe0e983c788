"""Tiny random models of each architecture family, with tokenizers that behave like the family's.

Every family is built in code (no hub): a 2-layer model of the family's own transformers class
(hidden size 32, vocabulary 64) and a word-level tokenizer over ``tests.conftest.WORDS`` whose
special tokens follow the family's real tokenizer: whether it adds a BOS token, which token ends a
text, and whether a pad token exists (Llama 2, Llama 3 and Mistral have none; Qwen and Phi-3 pad with their
end-of-text token, which is also their EOS). Where a family has an architectural trait that code
can get wrong, the tiny config turns it on at a size the test texts reach: Mistral's and Gemma 3's
sliding-window attention (window 4), Gemma 3's embedding scale (applied inside its embedding
module), Phi-3's fused ``qkv_proj`` / ``gate_up_proj``, Qwen 3's per-head norms, Llama 3's rope
scaling, and tied LM heads (Qwen 2 / 3, Gemma 3) beside untied ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import WORDS

SIZES = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)
QWEN_VOCAB = 256  # byte-level BPE: the characters of WORDS, then their merges
CHATML = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


@dataclass(frozen=True)
class Family:
    """One architecture family: its config class, its tokenizer's special tokens and habits."""

    name: str
    config: Callable[..., Any]  # the transformers config class
    eos: str
    bos: str | None = None  # a BOS token the tokenizer knows
    adds_bos: bool = False  # the tokenizer puts ``bos`` before every text
    pad: str | None = None  # None: the family has no pad token (the harness pads with EOS)
    extra_tokens: tuple[str, ...] = ()
    chat_template: str | None = None  # the family's own chat template, which an export must replace
    padding_side: str = "right"
    options: dict[str, Any] = field(default_factory=dict)  # config fields beyond SIZES

    def specials(self) -> list[str]:
        tokens = [self.pad, self.bos, self.eos, "<unk>", *self.extra_tokens]
        return list(dict.fromkeys(t for t in tokens if t is not None))

    def tokenizer(self) -> Any:
        tokenizer = self._qwen_bpe() if self.config.model_type.startswith("qwen") else self._word_level()
        if self.chat_template:
            tokenizer.chat_template = self.chat_template
        return tokenizer

    def _word_level(self) -> Any:
        """Whole words of ``WORDS``; the BOS (if the family adds one) put in by a post-processor."""
        from tokenizers import Tokenizer, processors
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit
        from transformers import PreTrainedTokenizerFast

        vocab = {token: i for i, token in enumerate(self.specials())}
        for word in WORDS:
            vocab.setdefault(word, len(vocab))
        core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
        core.pre_tokenizer = WhitespaceSplit()
        if self.adds_bos:
            core.post_processor = processors.TemplateProcessing(
                single=f"{self.bos} $A",
                pair=f"{self.bos} $A {self.bos} $B",
                special_tokens=[(self.bos, vocab[self.bos])],
            )
        named = {"bos_token": self.bos, "eos_token": self.eos, "pad_token": self.pad, "unk_token": "<unk>"}
        return PreTrainedTokenizerFast(
            tokenizer_object=core,
            **{k: v for k, v in named.items() if v is not None},
            additional_special_tokens=list(self.extra_tokens),
            padding_side=self.padding_side,
        )

    def _qwen_bpe(self) -> Any:
        """Qwen's own tokenizer class: transformers 5 loads a ``qwen2`` folder's tokenizer as
        ``Qwen2Tokenizer`` (byte-level BPE with Qwen's split pattern) whatever its tokenizer.json
        says, so the tiny Qwen gets a real byte-level BPE, trained here on ``WORDS``."""
        import json

        from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
        from tokenizers.models import BPE
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

        core = Tokenizer(BPE())
        core.normalizer = normalizers.NFC()
        core.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        corpus = [" ".join(WORDS), *WORDS, *(f" {w}" for w in WORDS), "\n"]
        alphabet = sorted(
            {c for text in corpus for piece, _ in core.pre_tokenizer.pre_tokenize_str(text) for c in piece}
        )
        trainer = trainers.BpeTrainer(
            vocab_size=QWEN_VOCAB, special_tokens=self.specials(), initial_alphabet=alphabet, show_progress=False
        )
        core.train_from_iterator(corpus, trainer)
        model = json.loads(core.to_str())["model"]
        return Qwen2Tokenizer(
            vocab=model["vocab"],
            merges=[tuple(m) for m in model["merges"]],
            eos_token=self.eos,
            pad_token=self.pad,
            unk_token="<unk>",
            additional_special_tokens=list(self.extra_tokens),
            padding_side=self.padding_side,
        )

    def model(self, seed: int = 0) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        tokenizer = self.tokenizer()
        ids = {
            f"{kind}_token_id": tokenizer.convert_tokens_to_ids(token) if token else None
            for kind, token in (("pad", self.pad), ("eos", self.eos), ("bos", self.bos))
        }
        vocab_size = QWEN_VOCAB if self.config.model_type.startswith("qwen") else SIZES["vocab_size"]
        assert len(tokenizer) <= vocab_size, len(tokenizer)
        config = self.config(**{**SIZES, "vocab_size": vocab_size}, **ids, **self.options)
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32).eval()

    def save(self, folder: Path, seed: int = 0) -> Path:
        """The tiny model and its tokenizer as a local model folder (``--backbone FOLDER``)."""
        self.model(seed).save_pretrained(folder)
        self.tokenizer().save_pretrained(folder)
        return folder


def _families() -> dict[str, Family]:
    import transformers as t

    llama2_tokens = dict(bos="<s>", adds_bos=True, eos="</s>")
    qwen_tokens = dict(
        eos="<|endoftext|>", pad="<|endoftext|>", extra_tokens=("<|im_start|>", "<|im_end|>"), chat_template=CHATML
    )
    families = [
        Family("llama", t.LlamaConfig, **llama2_tokens),
        Family(
            "llama3",
            t.LlamaConfig,
            bos="<|begin_of_text|>",
            adds_bos=True,
            eos="<|end_of_text|>",
            options=dict(
                rope_parameters={
                    "rope_type": "llama3",
                    "rope_theta": 500000.0,
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 16,
                }
            ),
        ),
        Family("mistral", t.MistralConfig, **llama2_tokens, options=dict(sliding_window=4)),
        Family("qwen2", t.Qwen2Config, **qwen_tokens, options=dict(tie_word_embeddings=True)),
        Family("qwen3", t.Qwen3Config, **qwen_tokens, options=dict(tie_word_embeddings=True, head_dim=8)),
        Family(
            "gemma3",
            t.Gemma3TextConfig,
            bos="<bos>",
            adds_bos=True,
            eos="<eos>",
            pad="<pad>",
            extra_tokens=("<start_of_turn>", "<end_of_turn>"),
            padding_side="left",
            chat_template="{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}",
            options=dict(
                head_dim=8,
                sliding_window=4,
                layer_types=["sliding_attention", "full_attention"],
                query_pre_attn_scalar=8,
                tie_word_embeddings=True,
            ),
        ),
        Family(
            "phi3",
            t.Phi3Config,
            bos="<s>",
            eos="<|endoftext|>",
            pad="<|endoftext|>",
            options=dict(sliding_window=None, tie_word_embeddings=False),
        ),
    ]
    return {family.name: family for family in families}


FAMILIES = _families()
