"""The AutoRegEmbed method: its slots, the encoder that reads them, and its export format."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.train_data import require_hub_data
from harness.encoder import TokenEncoder, model_facts, named_tensors
from harness.errors import HarnessError
from harness.method import Method
from harness.model.backbones import Backbone, BackboneSpec
from methods.autoregembed.config import PRESETS, SLOTS_FILE, SLOTS_PARAMETER, AutoRegEmbedConfig
from methods.autoregembed.data import ic_file
from methods.autoregembed.maths import compress_padded, mean_input_embedding, slots_of
from methods.autoregembed.stages import CDAStage, ICStage

if TYPE_CHECKING:
    import torch

    from harness.encoder import Encoder, EncodeSettings
    from harness.model.backbones import Backbone


# -- the encoder and the method -----------------------------------------------------------------
class SlotEncoder(TokenEncoder):
    """Mean of the k compressed tokens, L2-normalised."""

    def __init__(
        self,
        backbone: Backbone,
        slots: torch.Tensor,
        settings: EncodeSettings,
        template: str,
        document_template: str | None = None,
    ) -> None:
        super().__init__(
            backbone.tokenizer,
            embed_dim=backbone.model.config.hidden_size,
            device=backbone.device,
            settings=settings,
            template=template,
            document_template=document_template,
        )
        self.model, self.slots = backbone.model, slots

    def encoding_facts(self) -> dict[str, Any]:
        return {**super().encoding_facts(), **model_facts(self.model)}

    def cache_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield "slots", self.slots
        yield from named_tensors(self.model)

    def embed_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return F.normalize(
            compress_padded(self.model, self.slots, input_ids, attention_mask).float().mean(dim=1), dim=-1
        )


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
            raise HarnessError(f'method_args.stages {config.stages}: choose from ic, cda (e.g. ["ic", "cda"]).')
        self.slots: Any = None
        self.frozen: Any = None

    def stages(self) -> Sequence[Any]:
        table = {"ic": ICStage, "cda": CDAStage}
        return [table[name](self) for name in self.config.stages]

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The untrained backbone's last token after the same text and instruction (the paper's -L
        row): what the slots and the two stages add. Read as the authors' evaluation strings, without
        the newline training puts before the slots (the stronger reading: docs/results.md, Table 1)."""
        c = self.config
        sides = {"template": c.template, "document_template": c.document_template}
        return "untrained-last", {side: text.removesuffix("\n") for side, text in sides.items() if text}

    def closing_notes(self) -> list[str]:
        if self.config.preset not in ("quick", "small"):
            return []
        return [
            f"note: the {self.config.preset} preset trains a 135M model for minutes on 2 CPU cores. At this "
            "scale AutoRegEmbed scores below its untrained last-token baseline: its IC stage is far too "
            "short for the slots to carry the text (the IC diagnostics above say how far). "
            "docs/results.md measures the gap at larger budgets, with the commands."
        ]

    def check_inputs(self, train_data: str, seed: int) -> None:
        """The triplets, and the IC data file or hub set when one is named."""
        super().check_inputs(train_data, seed)
        if "ic" in self.config.stages and self.config.ic_data == "pwc":
            require_hub_data("sggetao/PwC", "ic_data 'pwc'")
        elif "ic" in self.config.stages and self.config.ic_data:
            ic_file(Path(self.config.ic_data))

    def prepare(self, backbone: Backbone) -> None:
        """Add the k slot vectors (trainable) and, for full fine-tuning, a frozen decoder copy."""
        import torch

        model = backbone.model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # as the authors' new special tokens start: the mean token embedding, in every slot
        init = mean_input_embedding(base.get_input_embeddings()).expand(self.config.slots, -1).clone()
        base.register_parameter(SLOTS_PARAMETER, torch.nn.Parameter(init))
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
        return SlotEncoder(backbone, self.slots, settings, self.config.template, self.config.document_template or None)

    def export_encoder(self, encoder: Encoder, model: Any, folder: Path) -> dict[str, Any]:
        """The slots go to ``slots.safetensors`` (tensor ``slots``, k x d), not into the LM's weights."""

        assert isinstance(encoder, SlotEncoder)
        from safetensors.torch import save_file

        save_file({"slots": encoder.slots.detach().float().contiguous().cpu()}, str(folder / SLOTS_FILE))
        if hasattr(model, SLOTS_PARAMETER):
            delattr(model, SLOTS_PARAMETER)
        return {"kind": "slots", "slots": int(encoder.slots.shape[0])}

    @classmethod
    def load_exported(
        cls, model: Any, tokenizer: Any, spec: dict[str, Any], folder: Path, settings: EncodeSettings
    ) -> Encoder:
        from safetensors.torch import load_file

        slots = load_file(str(folder / SLOTS_FILE))["slots"].to(model.device)
        backbone = Backbone(BackboneSpec(str(folder), str(folder), "local"), model, tokenizer)
        return SlotEncoder(backbone, slots, settings, spec["template"], spec.get("document_template"))
