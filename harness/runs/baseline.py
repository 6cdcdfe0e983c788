"""The training-free run beside a method's run: the baseline the method declares
(:meth:`harness.method.Method.baseline`), on the same backbone, tasks and evaluation settings,
so that the command's closing table says what the method added."""

from __future__ import annotations

import dataclasses

from harness.config import RunConfig
from harness.errors import HarnessError
from harness.method import Method
from harness.runs.plan import RunPlan, plan_run


def baseline_plan(config: RunConfig, method: Method) -> RunPlan | None:
    """The checked plan of ``method``'s baseline under ``config`` (its training options, data and
    dev tasks dropped: the baseline trains nothing), or None where the method declares none."""
    declared = method.baseline()
    if declared is None:
        return None
    name, args = declared
    twin = dataclasses.replace(
        config, method=name, method_args=dict(args), train_data=RunConfig().train_data, dev_tasks=[], repeats=None
    )
    try:
        plan = plan_run(twin)
    except HarnessError as exc:
        raise HarnessError(f"{config.method}'s baseline ({name}): {exc} Run without it: --no-baseline.") from None
    if plan.trains:
        raise HarnessError(
            f"{config.method}'s baseline ({name}) trains: a baseline must be training-free. Run without it: --no-baseline."
        )
    return plan
