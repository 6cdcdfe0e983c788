"""The shared training loop and what it runs on: options, parameters, data order, checkpoints,
engines (replicated, FSDP2, DeepSpeed), sharding settings and processes.

A trained method's options subclass :class:`TrainConfig`; its stages run on
:func:`harness.training.loop.run_stages`.
"""

from harness.training.train_config import Hooks, StageReport, StepLog, TrainConfig

__all__ = ["Hooks", "StageReport", "StepLog", "TrainConfig"]
