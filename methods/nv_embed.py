"""NV-Embed: a latent-attention layer pools the LLM's token states, trained contrastively with
bidirectional attention.

Lee, Roy, Xu, Raiman, Shoeybi, Catanzaro and Ping, "NV-Embed: Improved Techniques for Training LLMs
as Generalist Embedding Models", arXiv 2405.17428 (2024); reference code: the ``modeling_nvembed.py``
of nvidia/NV-Embed-v2. Each token's last hidden state is a query into a trainable latent array (512
latents): cross-attention (8 heads; keys and values from the latents, each side layer-normed first),
added to the state, then a GEGLU MLP (4x, layer-normed first), added again; the vector is the mean of
the result over the text's tokens (the instruction masked out, as the reference's ``pool_mask``).
The backbone attends bidirectionally and trains with LoRA; the head trains in full. Training is the
InfoNCE stage (in-batch and hard negatives), so every InfoNCE option (the improved loss, Matryoshka
dims, GradCache) applies.

Follows the reference's layer: head width ``latent_head_dim`` defaults to the hidden size (its
``cross_dim_head`` equals its hidden size), latents drawn from a standard normal, no biases in the
attention's projections. Departs from it: one contrastive stage on the run's triplets, not the
paper's two-stage instruction tuning on its retrieval and non-retrieval mixture; the house LoRA
dropout (0.05) rather than the paper's 0.1; no EOS appended to each text (the tokenizer's habit
decides); the head's FLOPs are not counted in MFU. ``infonce`` with ``pooling=mean`` at equal steps
is the baseline that isolates the head (and ``llm2vec --set 'method_args.stages=["supervised"]'``
the bidirectional attention).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.encoder import PooledEncoder, encoder_templates
from harness.errors import HarnessError
from harness.method import option
from harness.model.packing import TOKEN_HEAD
from harness.options import template_option
from methods.infonce import InfoNCE, InfoNCEConfig

if TYPE_CHECKING:
    import torch

    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone

HEAD_FILE = "latent_attention.safetensors"


@dataclass
class NVEmbedConfig(InfoNCEConfig):
    template: str = template_option("{text}", "prompt around each text (an instruction, for instruction tuning)")
    pool_text_only: bool = option(
        True,
        "mean over the text's own tokens, instruction excluded (the reference's pool_mask); false = the whole row",
    )
    latents: int = option(512, "latent array size (the paper's 512)", minimum=1)
    latent_heads: int = option(8, "cross-attention heads (the paper's 8)", minimum=1)
    latent_head_dim: int = option(0, "width of each head (0 = the hidden size, as the reference)", minimum=0)

    def inconsistency(self, prefix: str) -> str | None:
        if self.pooling != "mean":
            return (
                f"{prefix}pooling={self.pooling!r}: NV-Embed mean-pools the latent-attention layer's output; keep mean"
            )
        return super().inconsistency(prefix)


class NVEmbed(InfoNCE):
    """InfoNCE on triplets under bidirectional attention, pooled through a latent-attention layer."""

    Config = NVEmbedConfig
    summary = "NV-Embed (Lee et al. 2024): latent-attention pooling head, bidirectional attention, InfoNCE with LoRA"
    attention = "bidirectional"
    own_parameters = True  # the head: finetune=frozen trains it alone

    def prepare(self, backbone: Backbone) -> None:
        """The latent-attention layer, on the base model under the token-head name (its
        parameters train, checkpoint and shard with the model's)."""

        model = backbone.model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        embedding = base.get_input_embeddings().weight
        c = self.config
        head = latent_attention(embedding.shape[1], c.latents, c.latent_heads, c.latent_head_dim or embedding.shape[1])
        base.add_module(TOKEN_HEAD, head.to(device=embedding.device, dtype=embedding.dtype))

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        c = self.config
        return PooledEncoder(
            backbone.model,
            backbone.tokenizer,
            pooling="mean",
            settings=settings,
            **encoder_templates(c.template, c.document_template, c.query_template, text_only=c.pool_text_only),
        )

    def export_encoder(self, encoder: Encoder, model: Any, folder: Path) -> dict[str, Any]:
        """The head goes to ``latent_attention.safetensors``, not into the LM's weights."""

        head = getattr(model, TOKEN_HEAD, None)
        if head is None:
            raise HarnessError("the model has no latent-attention layer to export.")
        from safetensors.torch import save_file

        save_file(
            {name: tensor.detach().float().contiguous().cpu() for name, tensor in head.state_dict().items()},
            str(folder / HEAD_FILE),
        )
        delattr(model, TOKEN_HEAD)
        return {"kind": "latent-attention", "pooling": "mean", **head.layout()}

    @classmethod
    def load_exported(
        cls, model: Any, tokenizer: Any, spec: dict[str, Any], folder: Path, settings: EncodeSettings
    ) -> Encoder:
        head = latent_attention(spec["hidden"], spec["latents"], spec["heads"], spec["head_dim"])
        from safetensors.torch import load_file

        head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        weight = model.get_input_embeddings().weight
        model.add_module(TOKEN_HEAD, head.to(device=weight.device, dtype=weight.dtype))
        return PooledEncoder(
            model,
            tokenizer,
            pooling="mean",
            settings=settings,
            template=spec["template"],
            document_template=spec.get("document_template"),
            query_template=spec.get("query_template"),
        )


@functools.cache
def _layer_class() -> type:
    """The layer's class, made on first use so that importing the method does not import torch."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LatentAttention(nn.Module):
        """NV-Embed's latent-attention layer over token states [N, d] (each token on its own)."""

        def __init__(self, hidden: int, latents: int, heads: int, head_dim: int) -> None:
            super().__init__()
            self.hidden, self.heads, self.head_dim = hidden, heads, head_dim
            inner = heads * head_dim
            self.latents = nn.Parameter(torch.randn(latents, hidden))
            self.norm = nn.LayerNorm(hidden)
            self.norm_latents = nn.LayerNorm(hidden)
            self.to_q = nn.Linear(hidden, inner, bias=False)
            self.to_kv = nn.Linear(hidden, 2 * inner, bias=False)
            self.to_out = nn.Linear(inner, hidden, bias=False)
            self.norm_ff = nn.LayerNorm(hidden)
            self.ff_in = nn.Linear(hidden, 8 * hidden)  # GEGLU: half values, half gates
            self.ff_out = nn.Linear(4 * hidden, hidden)

        def layout(self) -> dict[str, int]:
            return {
                "hidden": self.hidden,
                "latents": self.latents.shape[0],
                "heads": self.heads,
                "head_dim": self.head_dim,
            }

        def extra_repr(self) -> str:
            return ", ".join(f"{key}={value}" for key, value in self.layout().items())

        def forward(self, states: torch.Tensor) -> torch.Tensor:
            n, h = states.shape[0], self.heads
            q = self.to_q(self.norm(states)).view(n, h, self.head_dim).transpose(0, 1)  # [h, N, e]
            k, v = self.to_kv(self.norm_latents(self.latents)).chunk(2, dim=-1)
            k, v = (t.view(-1, h, self.head_dim).transpose(0, 1) for t in (k, v))  # [h, r, e]
            attended = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, h * self.head_dim)
            states = self.to_out(attended) + states
            values, gates = self.ff_in(self.norm_ff(states)).chunk(2, dim=-1)
            return self.ff_out(values * F.gelu(gates)) + states

    return LatentAttention


def latent_attention(hidden: int, latents: int, heads: int, head_dim: int) -> Any:
    """NV-Embed's latent-attention layer (a ``torch.nn.Module``) over token states [N, hidden]."""
    return _layer_class()(hidden, latents, heads, head_dim)
