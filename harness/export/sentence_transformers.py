"""A sentence-transformers module that encodes through the harness encoder of an exported folder.

sentence-transformers' own ``Transformer`` + ``Pooling`` modules run a model causally over one
string and pool the whole row. An encoder that attends bidirectionally, pools a span, reads the
text twice or has parts of its own (a method's slots) is none of that, so its folder's
``modules.json`` names this module instead: ``SentenceTransformer(DIR)`` then loads
:func:`harness.export.loading.load_encoder` (the harness must be installed) and gives its vectors,
``encode_query`` / ``encode_document`` reading each side's template. The encoder loads on first use,
on a GPU when one is available.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentence_transformers.base.modules import InputModule

from harness.export.loading import load_encoder

if TYPE_CHECKING:
    import torch


class HarnessModule(InputModule):
    """The whole encoder as one input module: texts in, ``sentence_embedding`` out."""

    config_file_name = "harness_module.json"
    config_keys = ["embed_dim"]
    save_in_root = True

    def __init__(self, folder: str, embed_dim: int) -> None:
        super().__init__()
        self.folder = str(folder)
        self.embed_dim = embed_dim
        self._encoder: Any = None

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            import torch

            self._encoder = load_encoder(self.folder, device="cuda" if torch.cuda.is_available() else "cpu")
        return self._encoder

    def preprocess(
        self, inputs: Any, prompt: str | None = None, task: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        texts = [prompt + text for text in inputs] if prompt else list(inputs)
        return {"texts": texts, "task": task}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        import torch

        vectors = self.encoder.encode(features["texts"], prompt_type=features.get("task"))
        return {**features, "sentence_embedding": torch.from_numpy(vectors)}

    def get_embedding_dimension(self) -> int:
        return self.embed_dim

    get_sentence_embedding_dimension = get_embedding_dimension

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> HarnessModule:
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        return cls(str(Path(model_name_or_path) / subfolder), **config)
