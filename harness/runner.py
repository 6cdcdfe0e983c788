"""From a checked config to a recorded run.

:func:`plan_run` validates everything a user can get wrong (method, options, backbone, tasks)
before anything is recorded. :func:`execute` then records the run as ``running``, loads the
backbone, runs the method's stages, evaluates the encoder on each task through mteb, records
scores and timings as they arrive, and ends the run as ``finished`` or ``failed`` (never left
``running``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import traceback
from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from harness import registry
from harness.backbones import BackboneSpec, load_backbone, require_available, resolve
from harness.config import RunConfig, build_dataclass, config_hash
from harness.errors import HarnessError
from harness.method import Method, MethodConfig
from harness.tasks import TaskSpec, build_mteb_task, resolve_tasks

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask
    from rich.console import Console

    from leaderboard.store import RunStore


@dataclass
class RunPlan:
    """A run whose every input has been checked."""

    config: RunConfig
    method_cls: type[Method]
    method_config: MethodConfig
    backbone: BackboneSpec
    tasks: list[TaskSpec]

    def resolved(self) -> dict[str, Any]:
        """The fully resolved config that is recorded (and hashed, seed aside)."""
        values = dataclasses.asdict(self.config)
        values["method_args"] = dataclasses.asdict(self.method_config)
        values["backbone"] = {"name": self.backbone.name, "source": self.backbone.source, "kind": self.backbone.kind}
        values["tasks"] = [spec.record() for spec in self.tasks]
        return values

    @property
    def task_spec(self) -> str:
        return ",".join(self.config.tasks)


def plan_run(config: RunConfig) -> RunPlan:
    method_cls = registry.get_method(config.method)
    method_config = build_dataclass(
        method_cls.Config, config.method_args, f"method {config.method!r} option"
    )
    backbone = resolve(config.backbone)
    require_available(backbone)
    tasks = resolve_tasks(config.tasks)
    return RunPlan(config, method_cls, method_config, backbone, tasks)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _quiet_libraries() -> None:
    """Our own progress display replaces the libraries' tqdm bars and info logs."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("mteb").setLevel(logging.WARNING)


def _task_scores(task_result: Any) -> tuple[float, dict]:
    """(main score, all numbers) from one mteb ``TaskResult``; subsets are averaged."""
    details = task_result.to_dict()["scores"]
    values = [entry["main_score"] for entries in details.values() for entry in entries]
    if not values:
        raise HarnessError(f"mteb returned no scores for task {task_result.task_name}.")
    return float(fmean(values)), details


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by the user (Ctrl-C)"
    if isinstance(exc, HarnessError):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_tasks(specs: list[TaskSpec]) -> list[AbsTask]:
    """Build every mteb task and load its data, so a missing dataset fails before recording."""
    tasks = []
    for spec in specs:
        task = build_mteb_task(spec)
        try:
            task.load_data()
        except (ConnectionError, OSError) as exc:
            path = task.metadata.dataset.get("path", spec.name)
            raise HarnessError(
                f"task {spec.name} reads its data ({path}) from the hub, which failed here: {exc}. "
                "Run it where the hub is reachable (or its data is cached), or use the 'offline' "
                "preset or a task file."
            ) from None
        tasks.append(task)
    return tasks


def execute(plan: RunPlan, store: RunStore, console: Console) -> int:
    """Run ``plan`` and record it in ``store``; returns the run id. Re-raises any failure."""
    from harness import environment
    from harness.telemetry import measure

    _quiet_libraries()
    with measure("data") as data_phase, console.status("Loading task data"):
        tasks = load_tasks(plan.tasks)
    data_phase.items = len(tasks)
    resolved = plan.resolved()
    run_id = store.start_run(
        method=plan.config.method,
        backbone=plan.backbone.name,
        task_spec=plan.task_spec,
        task_names=[t.name for t in plan.tasks],
        config=resolved,
        config_hash=config_hash(resolved),
        seed=plan.config.seed,
        environment=environment.collect(),
    )
    console.print(f"[bold]Run #{run_id}[/]: {plan.config.method} on {plan.backbone.name}, tasks {plan.task_spec}")
    try:
        store.record_timing(run_id, **data_phase.as_dict())
        _execute(plan, tasks, run_id, resolved, store, console)
    except BaseException as exc:
        store.fail_run(run_id, _describe(exc))
        raise
    store.finish_run(run_id)
    return run_id


def _execute(
    plan: RunPlan, tasks: list[AbsTask], run_id: int, resolved: dict, store: RunStore, console: Console
) -> None:
    import mteb

    from harness.encoder import EncodeSettings
    from harness.mteb_adapter import MtebEncoder, model_meta
    from harness.progress import encoding_progress
    from harness.telemetry import measure

    seed_everything(plan.config.seed)
    with measure("load") as phase, console.status("Loading backbone") as status:
        backbone = load_backbone(plan.backbone, plan.config.device, plan.config.dtype, status)
    phase.items = 1
    store.record_timing(run_id, **phase.as_dict())

    method = plan.method_cls(plan.method_config)
    if method.stages():
        raise HarnessError(
            f"method {plan.config.method!r} declares training stages, and this release has no "
            "training engine yet; only untrained methods can run."
        )
    settings = EncodeSettings(batch_size=plan.config.batch_size, max_length=plan.config.max_length)
    encoder = method.build_encoder(backbone, settings)
    digest = config_hash(resolved)
    adapter = MtebEncoder(
        encoder,
        model_meta(
            name=f"harness/{plan.config.method}__{plan.backbone.name.replace('/', '--')}",
            revision=digest[:12],
            n_parameters=backbone.n_parameters,
            embed_dim=encoder.embed_dim,
            max_tokens=plan.config.max_length,
            source=plan.backbone.source,
        ),
    )
    for spec, task in zip(plan.tasks, tasks):
        before_texts, before_tokens = encoder.texts_encoded, encoder.tokens_encoded
        with measure(f"evaluate:{spec.name}", backbone.device) as phase:
            with encoding_progress(console, spec.name) as advance:
                encoder.progress = advance
                result = mteb.evaluate(
                    adapter,
                    task,
                    cache=None,
                    encode_kwargs={"batch_size": plan.config.batch_size},
                    show_progress_bar=False,
                )
        if result.exceptions:
            raise HarnessError(f"task {spec.name} failed in mteb: {result.exceptions[0]}")
        phase.items = encoder.texts_encoded - before_texts
        phase.tokens = encoder.tokens_encoded - before_tokens
        main_metric = task.metadata.main_score
        main_score, details = _task_scores(result.task_results[0])
        store.record_score(run_id, task=spec.name, main_metric=main_metric, main_score=main_score, details=details)
        store.record_timing(run_id, **phase.as_dict())
        console.print(f"  {spec.name}: {main_metric} = {100 * main_score:.2f}  ({phase.seconds:.1f} s)")
