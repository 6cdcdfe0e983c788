"""Is the Hugging Face hub usable for this repo, right now? Asked once per process, in seconds.

Offline mode is huggingface_hub's own (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``, through
``is_offline_mode``). Otherwise one metadata request with a short timeout and no retries tells a
reachable hub from an unreachable one, and a missing or gated repo from a usable one, before a
run is recorded, instead of transformers' minute of retries when the load begins.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, is_offline_mode, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

TIMEOUT_S = 5.0
_unreachable: list[str] = []  # once the hub could not be reached, why: later repos are not probed


def offline() -> bool:
    return is_offline_mode()


@cache
def problem(repo_id: str, repo_type: Literal["model", "dataset"] = "model") -> str | None:
    """None when ``repo_id`` can be fetched from the hub; else why not, as a clause."""

    if offline():
        return "HF_HUB_OFFLINE is set"
    if _unreachable:  # `harness backbones` asks for a dozen repos: one timeout, not a dozen
        return _unreachable[0]
    try:
        if repo_type == "model":
            get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=TIMEOUT_S)
        else:
            from huggingface_hub import HfApi

            HfApi().repo_info(repo_id, repo_type="dataset", timeout=TIMEOUT_S)
    except GatedRepoError:
        return f"{repo_id} is gated: accept its licence on the hub, then `hf auth login`"
    except RepositoryNotFoundError:
        return f"{repo_id} is not on the hub (or is private: `hf auth login`)"
    except HfHubHTTPError as exc:
        return f"the hub answered {exc.response.status_code if exc.response is not None else 'an error'} for {repo_id}"
    except Exception as exc:  # connection refused, DNS, timeouts: the HTTP client's own errors
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        _unreachable.append(f"the hub ({constants.ENDPOINT}) cannot be reached ({reason})")
        return _unreachable[0]
    return None


def cached_snapshot(repo_id: str) -> Path | None:
    """The hub cache's folder of ``repo_id`` at the commit ``from_pretrained`` would load: offline,
    the one the cache's ``main`` names; else the commit the hub serves now (one request), if that
    snapshot is cached. None where it is not, or the hub cannot say."""

    try:
        revision = (
            None
            if offline()
            else get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=TIMEOUT_S).commit_hash
        )
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # not cached, the hub unreachable or refusing: the model is loaded the usual way
        return None
