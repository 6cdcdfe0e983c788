"""What a run sets up in its own process: quiet libraries, seeded generators, and SIGTERM (a batch
scheduler's stop) handled like Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from huggingface_hub.utils import disable_progress_bars


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet_libraries() -> None:
    """Our own progress display replaces the libraries' tqdm bars, info logs and load reports.

    transformers is not imported for this (a command answered from the embedding cache never
    imports it): it takes its level from ``TRANSFORMERS_VERBOSITY`` and its bars' switch from the
    hub's when it is imported; where it already is, it is told directly."""
    # transformers imports DeepSpeed whenever it is installed, and DeepSpeed warns on import and
    # sets its logger's level itself, so a filter (which it keeps), set first, is what quiets it
    logging.getLogger("DeepSpeed").addFilter(_errors_only)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
    logging.getLogger("mteb").setLevel(logging.WARNING)
    disable_progress_bars()
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    if "transformers" in sys.modules:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's stop or preemption), handled like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While a run is recorded, SIGTERM interrupts it like Ctrl-C (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def ctrl_c_held_off() -> Iterator[None]:
    """A second Ctrl-C waits until the block (a status write) is done (main thread only)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
