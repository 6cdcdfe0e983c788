"""From a checked plan to a recorded run.

:func:`execute` loads the task data and the backbone, checks the options against it, and only
then records the run as ``running``; it runs the method's stages, evaluates the encoder on each
task through mteb, records scores and timings as they arrive, and ends the run as ``finished``,
``failed`` or ``interrupted`` (never left ``running``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import faults, ranks
from harness.config import config_hash
from harness.errors import HarnessError, RunFailed, RunInterrupted
from harness.evaluation.embedding_cache import CacheSettings
from harness.evaluation.evaluate import evaluate
from harness.evaluation.task_loading import LoadedTask, load_tasks
from harness.evaluation.warm import DeferredBackbone
from harness.model.backbones import pick_device
from harness.runs import environment, folders
from harness.runs.backbone_checks import check_against_backbone, family_note
from harness.runs.load_key import evaluation_backbone
from harness.runs.plan import RunPlan
from harness.runs.process import Terminated, ctrl_c_held_off, quiet_libraries, seed_everything, sigterm_interrupts
from harness.runs.recorder import Recorder
from harness.runs.restore import loaded_backbone, trained_backbone
from harness.runs.stages import train
from harness.telemetry.phases import measure
from harness.training.checkpoints import check_resumable

if TYPE_CHECKING:
    from rich.console import Console

    from harness.evaluation.warm import DeferredBackbone
    from harness.model.backbones import Backbone
    from harness.telemetry.phases import Phase
    from leaderboard.store import RunStore


@dataclass
class RunOptions:
    """How a planned run is executed."""

    output_root: Path  # --output-dir: each trained run gets a folder of its own under it
    resume: dict[str, Any] | None = None  # --resume: the recorded run to continue, in its own row
    report_to: Sequence[str] = ()  # --report-to: trackers that mirror the run on rank 0
    warnings: list[str] = field(default_factory=list)  # filled with the warnings the run printed
    cache: CacheSettings = field(default_factory=CacheSettings)  # --no-cache, --cache-limit-gb


@dataclass
class _Run:
    """One run as it executes: what was loaded before it was recorded, and where it is recorded."""

    plan: RunPlan
    options: RunOptions
    console: Console
    main: bool  # rank 0, which records
    tasks: list[LoadedTask]
    dev_tasks: list[LoadedTask]  # --dev-tasks: evaluated during training
    backbone: Backbone | DeferredBackbone  # deferred: untrained, every vector in the cache (harness.evaluation.warm)
    phases: list[Phase]  # loading task data and the backbone, recorded once the row exists
    resolved: dict[str, Any]
    run_uuid: str
    load_key: str | None = None  # the backbone's load key, kept with the fingerprint it gets
    store: RunStore | None = None
    run_id: int | None = None
    folder: Path | None = None


def describe(exc: BaseException) -> str:
    """A failure as the run's row says it: our messages whole, others with where they arose."""
    if isinstance(exc, (HarnessError, RunFailed)):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def execute(plan: RunPlan, open_store: Callable[[], RunStore] | None, console: Console, options: RunOptions) -> int:
    """Run ``plan`` and record it (rank 0 only, where ``open_store`` is given); returns the run id.
    Re-raises any failure; Ctrl-C or SIGTERM mark the run ``interrupted`` and raise
    :class:`RunInterrupted`.

    Task data is loaded, the backbone loaded and the options checked against it before the
    leaderboard is opened (and, the first time, created): a run refused by its inputs leaves no
    row and no database file. A fresh run gets a new output folder of its own (see
    :mod:`harness.runs.folders`); with ``options.resume`` it continues in the recorded row, from
    the latest checkpoint of that run's own folder, whose identity is checked before the row is
    touched.
    """

    quiet_libraries()
    info = ranks.init(pick_device(plan.config.device).type)
    run = _load(plan, options, console, main=info.is_main and open_store is not None)
    if run.main:
        run.store = open_store()
        run.run_id = _open_row(run)
    try:
        with sigterm_interrupts():
            _record(run)
    except KeyboardInterrupt as exc:
        if run.main:
            reason = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted by the user (Ctrl-C)"
            with ctrl_c_held_off():
                run.store.interrupt_run(run.run_id, reason)
            raise RunInterrupted(run.run_id, reason) from None
        raise
    except BaseException as exc:
        if run.main:
            run.store.fail_run(run.run_id, describe(exc))
        if isinstance(exc, ranks.RankFailed):
            ranks.barrier()  # every rank knows: none leaves (and has the launcher stop rank 0) before it recorded
        raise
    if run.main:
        _finish(run)
    return run.run_id


def _load(plan: RunPlan, options: RunOptions, console: Console, *, main: bool) -> _Run:
    """Everything a run needs before it is recorded: task data, the backbone, and (resuming) a
    checkpoint that can be read, on every rank."""

    with measure("data") as data_phase, console.status("Loading task data"):
        tasks = load_tasks(plan.tasks, plan.config.limit)  # on every rank: all of them evaluate
        dev_tasks = load_tasks(plan.dev_tasks, plan.config.limit, dev=True)
        plan.dev_tasks[:] = [loaded.spec for loaded in dev_tasks]  # with the split each evaluates, as recorded
    data_phase.items = len(tasks) + len(dev_tasks)
    seed_everything(plan.config.seed)
    with measure("load") as load_phase:
        if plan.trains:
            backbone, key = loaded_backbone(plan, console), None
        else:  # untrained: not loaded at all where the cache holds every vector (harness.evaluation.warm)
            backbone, key = evaluation_backbone(plan, options.cache, lambda: loaded_backbone(plan, console))
    load_phase.items = 0 if isinstance(backbone, DeferredBackbone) else 1
    if not isinstance(backbone, DeferredBackbone):  # a deferred one passed these checks when its key was kept
        check_against_backbone(backbone, plan.config, plan.method.config)
        plan.method.check_backbone(backbone)
        note = family_note(backbone)
        if note and main:
            console.print(note, style="yellow", highlight=False)
    resume = options.resume
    resolved = resume["config"] if resume is not None else plan.resolved()  # a resume is named by its record
    run = _Run(
        plan,
        options,
        console,
        main,
        tasks,
        dev_tasks,
        backbone,
        [data_phase, load_phase],
        resolved,
        resume["uuid"] if resume is not None else uuid.uuid4().hex,
        load_key=key,
    )
    if resume is not None and plan.trains:  # every rank: a checkpoint that cannot be read stops them all
        folder = folders.own_folder(resume, options.output_root, purpose="resume")
        if folder is not None:
            check_resumable(folder)
        run.folder = folder if main else None
    return run


def _open_row(run: _Run) -> int:
    """The run's row: reopened (``--resume``) or new, as ``running``."""

    plan, store, resume = run.plan, run.store, run.options.resume
    if resume is not None:
        store.reopen_run(resume["run_id"])
        return resume["run_id"]
    return store.start_run(
        method=plan.config.method,
        backbone=plan.backbone.name,
        task_spec=plan.task_spec,
        task_names=[t.name for t in plan.tasks],
        config=run.resolved,
        config_hash=config_hash(run.resolved),
        seed=plan.config.seed,
        environment=environment.collect(type(plan.method)),
        run_uuid=run.run_uuid,
    )


def _record(run: _Run) -> None:
    """Train and evaluate, with every rank agreeing on the run's id and folder."""
    plan, console = run.plan, run.console
    if run.main and plan.trains and run.folder is None:  # a fresh run, or one stopped before training
        run.folder = folders.claim(run.options.output_root, run.run_id, run.run_uuid, str(run.store.location))
        run.store.set_output_dir(run.run_id, str(run.folder))
    run.run_id, run.folder = _share(run.run_id, run.folder)
    recorder = Recorder(run.store if run.main else None, run.run_id, console, run.options.warnings)
    if run.main:
        verb = "Resuming" if run.options.resume is not None else "Run"
        console.print(
            f"[bold]{verb} #{run.run_id}[/]: {plan.config.method} on {plan.backbone.name}, tasks {plan.task_spec}"
        )
    with contextlib.ExitStack() as stack:
        if run.main:
            stack.enter_context(run.store.heartbeat_while(run.run_id))
        if run.main and run.options.report_to:
            reporter = recorder.report_to(run.options.report_to, run.run_uuid, run.resolved, run.options.output_root)
            stack.callback(reporter.finish)
        for phase in run.phases:
            recorder.timing(phase)
        faults.point("load")
        _train_and_evaluate(run, recorder)


def _share(run_id: int | None, folder: Path | None) -> tuple[int, Path | None]:
    """Rank 0's run id and output folder, on every rank."""
    shared_id, shared_folder = ranks.broadcast_from_main((run_id, str(folder) if folder else None))
    return int(shared_id), Path(shared_folder) if shared_folder else None


def _train_and_evaluate(run: _Run, recorder: Recorder) -> None:
    plan, backbone = run.plan, run.backbone
    if plan.trains:
        assert run.folder is not None
        train(
            plan,
            backbone,
            recorder,
            run.console,
            run.folder,
            resume=run.options.resume is not None,
            dev_tasks=run.dev_tasks,
        )
        if plan.sharding.sharded:  # on every rank: each encodes its shard of the texts
            run.backbone = backbone = None  # sharded in place: freed, to encode from the final checkpoint instead
            run.backbone = backbone = trained_backbone(plan, run.folder, run.console)
    else:
        if isinstance(backbone, DeferredBackbone):
            backbone.load = functools.partial(_prepared, backbone.load, plan)
        else:
            plan.method.prepare(backbone)
        recorder.model(trainable_parameters=0)
    how = dataclasses.replace(plan.evaluation(run.resolved, run.options.cache), load_key=run.load_key)
    evaluate(plan.method, backbone, run.tasks, how, recorder, run.console)


def _prepared(load: Callable[[], Backbone], plan: RunPlan) -> Backbone:
    """A deferred untrained backbone, loaded and prepared by its method from the seed, as a cold run
    loads it."""
    seed_everything(plan.config.seed)
    backbone = load()
    plan.method.prepare(backbone)
    return backbone


def _finish(run: _Run) -> None:
    try:
        run.store.finish_run(run.run_id)
    except Exception as exc:  # the scores are in; only the status write failed
        raise RunFailed(
            f"run #{run.run_id} computed and recorded all its scores, but marking it finished failed "
            f"({type(exc).__name__}: {exc}); `harness run --resume {run.run_id}` evaluates it again and finishes it."
        ) from None
