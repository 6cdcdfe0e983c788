"""Which examples each step, micro-batch and rank trains on, how many steps a stage has, and its learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable

from harness.errors import HarnessError
from harness.training import distributed
from harness.training.train_config import TrainConfig


def schedule(total: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(round(total * warmup_ratio))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def batch_indices(
    n: int, *, seed: int, step: int, micro: int, config: TrainConfig, world: distributed.DistInfo
) -> list[int]:
    """The examples of one rank's micro-batch: a seeded permutation per epoch, cut in global batches.

    The global batch of a step holds ``grad_accum x world x batch_size`` examples; micro-batch m
    takes the m-th slice of ``world x batch_size``, and rank r the r-th part of that slice. So
    1 process x 2B and 2 processes x B see the same examples in the same order.
    """
    import torch

    per_step = config.batch_size * config.grad_accum * world.world_size
    steps_per_epoch = n // per_step
    epoch, within = divmod(step, steps_per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    start = within * per_step + (micro * world.world_size + world.rank) * config.batch_size
    return order[start : start + config.batch_size]


def total_steps(n: int, config: TrainConfig, world_size: int) -> int:
    per_step = config.batch_size * config.grad_accum * world_size
    if n < per_step:
        raise HarnessError(
            f"the training data has {n} examples, fewer than one optimizer step needs "
            f"({config.batch_size} x {config.grad_accum} accumulation x {world_size} processes)."
        )
    return config.steps or max(1, math.floor(config.epochs * (n // per_step)))
