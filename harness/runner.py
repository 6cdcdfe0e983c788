"""From a checked config to a recorded run.

:func:`plan_run` validates everything a user can get wrong (method, options, backbone, tasks)
before anything is recorded. :func:`execute` then records the run as ``running``, loads the
backbone, runs the method's stages, evaluates the encoder on each task through mteb, records
scores and timings as they arrive, and ends the run as ``finished`` or ``failed`` (never left
``running``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import logging
import random
import signal
import threading
import traceback
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import distributed, registry, run_folders
from harness.backbones import BackboneSpec, load_backbone, require_available, resolve
from harness.config import RunConfig, build_dataclass, config_hash
from harness.errors import HarnessError, RunFailed, RunInterrupted
from harness.method import Method, MethodConfig
from harness.model_checks import check_against_backbone
from harness.options import check_values
from harness.paths import writable_folder
from harness.quick_check import limit_task, limited_version, texts_to_encode
from harness.tasks import TaskSpec, build_mteb_task, resolve_tasks, task_version
from harness.telemetry import Phase
from harness.sharding_config import for_training
from harness.training import Hooks, StepLog, TrainConfig, check_resumable
from harness import faults

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask
    from rich.console import Console

    from harness.trackers import Reporter
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
        """The fully resolved config that is recorded (and hashed, seed aside).

        Its ``RunConfig`` keys rebuild the run (``--resume``, ``harness eval``); ``method_args``
        holds every option with its default filled in, and the ``*_resolved`` keys say what the
        backbone and tasks were (source, file digests).
        """
        values = dataclasses.asdict(self.config)
        values["method_args"] = dataclasses.asdict(self.method_config)
        values["backbone_resolved"] = {"source": self.backbone.source, "kind": self.backbone.kind}
        values["tasks_resolved"] = [spec.record() for spec in self.tasks]
        if values["limit"] is None:
            del values["limit"]  # a full run's config (and hash) is what it was before --limit existed
        if not self.method_cls(self.method_config).stages():
            values["train_data"] = None  # untrained: the training data cannot change the result
        return values

    @property
    def task_spec(self) -> str:
        """The tasks as asked for; a quick check says so (``offline --limit 50``)."""
        limit = "" if self.config.limit is None else f" --limit {self.config.limit}"
        return ",".join(self.config.tasks) + limit


def recorded_config(record: dict[str, Any]) -> RunConfig:
    """The ``RunConfig`` a recorded run was made from (for ``--resume`` and ``harness eval``)."""
    stored = record["config"]
    names = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in stored.items() if k in names and v is not None}
    return build_dataclass(RunConfig, values, f"the recorded config of run {record['run_id']}")


def method_options(method_cls: type[Method], method_args: dict[str, Any], name: str) -> MethodConfig:
    """The method's config: its preset (if ``preset`` is given or the Config defaults one), then
    the user's options on top."""
    values = dict(method_args)
    preset = values.get("preset")
    if preset is None and "preset" in {f.name for f in dataclasses.fields(method_cls.Config)}:
        preset = method_cls.Config.preset  # type: ignore[attr-defined]
    if preset is not None:
        if preset not in method_cls.presets:
            from harness.errors import unknown_name

            raise unknown_name(f"preset of method {name!r}", str(preset), method_cls.presets)
        values = {**method_cls.presets[preset], **values}
    config = build_dataclass(method_cls.Config, values, f"method {name!r}", prefix="method_args.")
    check_values(config, f"method {name!r}", prefix="method_args.")
    return config


def plan_run(config: RunConfig) -> RunPlan:
    """Check every input (method, options, backbone, tasks, training data) before anything is
    recorded; a problem raises ``HarnessError``."""
    method_cls = registry.get_method(config.method)
    method_config = method_options(method_cls, config.method_args, config.method)
    backbone = resolve(config.backbone)
    require_available(backbone)
    tasks = resolve_tasks(config.tasks)
    method_cls(method_config).check_inputs(config.train_data, config.seed)  # options and training data
    if isinstance(method_config, TrainConfig):
        for_training(method_config)  # a bad sharding choice or config file stops the run here
    return RunPlan(config, method_cls, method_config, backbone, tasks)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet_libraries() -> None:
    """Our own progress display replaces the libraries' tqdm bars, info logs and load reports."""
    # transformers imports DeepSpeed whenever it is installed, and DeepSpeed warns on import and
    # sets its logger's level itself, so a filter (which it keeps), set first, is what quiets it
    logging.getLogger("DeepSpeed").addFilter(_errors_only)
    import transformers

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("mteb").setLevel(logging.WARNING)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _task_scores(task_result: Any) -> tuple[float, dict, dict]:
    """(main score, all numbers, the whole result) from one mteb ``TaskResult``: the main score
    is mteb's own ``get_score()`` (the mean of the main score over evaluated splits and subsets)."""
    whole = json.loads(json.dumps(task_result.to_dict(), default=str))  # dates as ISO strings
    if not any(whole["scores"].values()):
        raise HarnessError(f"mteb returned no scores for task {task_result.task_name}.")
    main = float(task_result.get_score())
    if not math.isfinite(main):
        raise HarnessError(f"task {task_result.task_name}: the main score is {main} (e.g. every embedding equal); it was not recorded.")
    return main, whole["scores"], whole


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (HarnessError, RunFailed)):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_tasks(specs: list[TaskSpec], limit: int | None = None) -> list[AbsTask]:
    """Build every mteb task and load its data, so a missing dataset fails before recording;
    with ``limit``, keep the first ``limit`` items of each evaluated split."""
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
        if limit is not None:
            limit_task(task, limit)
        tasks.append(task)
    return tasks


class Recorder(Hooks):
    """Writes a run's progress to the leaderboard on rank 0, and mirrors it to the trackers of
    ``--report-to``; on other ranks it does nothing."""

    def __init__(
        self, store: RunStore | None, run_id: int, console: Console | None = None, warnings: list[str] | None = None,
    ) -> None:
        self.store, self.run_id, self.console = store, run_id, console
        self.reporter: Reporter | None = None  # set by execute() for --report-to
        self.warnings = warnings if warnings is not None else []  # the CLI repeats them after the table

    def note(self, message: str) -> None:
        if self.store is not None and self.console is not None:
            self.console.print(f"  {message}", highlight=False, soft_wrap=True)
            if message.startswith("warning:"):
                self.warnings.append(message)

    def timing(self, phase: Phase, details: dict | None = None) -> None:
        if self.store is not None:
            self.store.record_timing(self.run_id, **phase.as_dict(), details=details)
        if self.reporter is not None:
            self.reporter.timing(phase.phase, phase.seconds, details)

    def score(
        self, task: str, version: str, main_metric: str, main_score: float, details: dict, task_result: dict | None = None,
    ) -> None:
        if self.store is not None:
            self.store.record_score(
                self.run_id, task=task, task_version=version, main_metric=main_metric, main_score=main_score,
                details=details, task_result=task_result,
            )
        if self.reporter is not None:
            self.reporter.log({f"score/{task}": main_score})

    def model(self, **facts: int) -> None:
        if self.store is not None:
            self.store.record_model(self.run_id, **facts)

    def steps(self, stage: str, logs: list[StepLog]) -> None:
        if self.store is not None:
            self.store.record_metrics(self.run_id, stage, [dataclasses.asdict(log) for log in logs])
        if self.reporter is not None:
            self.reporter.steps(stage, logs)

    def checkpoint(self, path: Path) -> None:
        if self.store is not None:
            self.store.heartbeat(self.run_id)

    def diagnostics(self, stage: str, values: dict[str, float]) -> None:
        if self.store is not None:
            self.store.record_diagnostics(self.run_id, stage, values)
            if self.reporter is not None:
                self.reporter.log({f"diagnostics/{stage}/{name}": value for name, value in values.items()})
            if self.console is not None:
                shown = ", ".join(f"{name} {value:.3f}" for name, value in values.items())
                self.console.print(f"  {stage} diagnostics: {shown}", highlight=False, soft_wrap=True)


def _share(run_id: int | None, folder: Path | None) -> tuple[int, Path | None]:
    """Rank 0's run id and output folder, on every rank."""
    import torch.distributed as dist

    if not distributed.world().enabled:
        assert run_id is not None
        return run_id, folder
    box = [(run_id, str(folder) if folder else None)]
    dist.broadcast_object_list(box, src=0)
    shared_id, shared_folder = box[0]
    return int(shared_id), Path(shared_folder) if shared_folder else None


def check_output_root(root: Path) -> None:
    """Refuse, before anything is recorded, an ``--output-dir`` that cannot be created or written."""
    writable_folder(root, "--output-dir")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's stop or preemption), handled like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_interrupts() -> Any:
    """While a run is recorded, SIGTERM interrupts it like Ctrl-C (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _record_interruption(store: RunStore, run_id: int, exc: KeyboardInterrupt) -> str:
    """Mark the run interrupted, with a second Ctrl-C held off until the write is done."""
    reason = "stopped by SIGTERM" if isinstance(exc, _Terminated) else "interrupted by the user (Ctrl-C)"
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        store.interrupt_run(run_id, reason)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    return reason


def execute(
    plan: RunPlan,
    open_store: Callable[[], RunStore] | None,
    console: Console,
    *,
    output_root: Path,
    resume: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    report_to: Sequence[str] = (),
) -> int:
    """Run ``plan`` and record it (rank 0 only, where ``open_store`` is given); returns the run id.
    Re-raises any failure; Ctrl-C or SIGTERM mark the run ``interrupted`` and raise
    :class:`RunInterrupted`.

    Task data is loaded, the backbone loaded and the options checked against it before the
    leaderboard is opened (and, the first time, created): a run refused by its inputs leaves no
    row and no database file.

    A fresh run gets a new output folder of its own (see :mod:`harness.run_folders`). With
    ``resume`` (the recorded run) it continues in that row, from the latest checkpoint of that
    run's own folder, whose identity is checked before the row is touched. Warnings the run
    printed (e.g. IC diagnostics) are appended to ``warnings``. ``report_to`` names trackers
    (:mod:`harness.trackers`) that mirror the run on rank 0.
    """
    from harness import environment
    from harness.backbones import pick_device
    from harness.telemetry import measure

    quiet_libraries()
    info = distributed.init(pick_device(plan.config.device).type)
    main = info.is_main and open_store is not None
    trains = bool(plan.method_cls(plan.method_config).stages())
    tasks: list[AbsTask] = []
    with measure("data") as data_phase:
        if info.is_main:
            with console.status("Loading task data"):
                tasks = load_tasks(plan.tasks, plan.config.limit)
    data_phase.items = len(tasks)
    seed_everything(plan.config.seed)
    with measure("load") as load_phase, console.status("Loading backbone") as status:
        backbone = load_backbone(plan.backbone, plan.config.device, plan.config.dtype, status)
    load_phase.items = 1
    check_against_backbone(backbone, plan.config, plan.method_config)
    resolved = plan.resolved()
    run_id: int | None = None
    run_uuid = resume["uuid"] if resume is not None else uuid.uuid4().hex
    folder: Path | None = None
    if resume is not None and trains:  # every rank: a checkpoint that cannot be read stops them all
        folder = run_folders.own_folder(resume, output_root, purpose="resume")
        if folder is not None:
            check_resumable(folder)
        folder = folder if main else None
    store = open_store() if main and open_store is not None else None
    if main and resume is not None:
        store.reopen_run(resume["run_id"])
        run_id = resume["run_id"]
    elif main:
        run_id = store.start_run(
            method=plan.config.method,
            backbone=plan.backbone.name,
            task_spec=plan.task_spec,
            task_names=[t.name for t in plan.tasks],
            config=resolved,
            config_hash=config_hash(resolved),
            seed=plan.config.seed,
            environment=environment.collect(),
            run_uuid=run_uuid,
        )
    try:
        with _sigterm_interrupts():
            if main and trains and folder is None:  # a fresh run, or one stopped before training
                folder = run_folders.claim(output_root, run_id, run_uuid, str(store.location))
                store.set_output_dir(run_id, str(folder))
            run_id, folder = _share(run_id, folder)
            recorder = Recorder(store if main else None, run_id, console, warnings)
            if main:
                verb = "Resuming" if resume is not None else "Run"
                console.print(f"[bold]{verb} #{run_id}[/]: {plan.config.method} on {plan.backbone.name}, tasks {plan.task_spec}")
            with contextlib.ExitStack() as stack:
                if main:
                    stack.enter_context(store.heartbeat_while(run_id))
                if main and report_to:
                    recorder.reporter = _reporter(report_to, run_id, run_uuid, resolved, store, output_root, recorder.note)
                    stack.callback(recorder.reporter.finish)
                recorder.timing(data_phase)
                recorder.timing(load_phase)
                faults.point("load")
                _execute(plan, backbone, tasks, resolved, recorder, console, folder, resume=resume is not None)
    except KeyboardInterrupt as exc:
        if main and run_id is not None:
            raise RunInterrupted(run_id, _record_interruption(store, run_id, exc)) from None
        raise
    except BaseException as exc:
        if main and run_id is not None:
            store.fail_run(run_id, _describe(exc))
        raise
    if main:
        try:
            store.finish_run(run_id)
        except Exception as exc:  # the scores are in; only the status write failed
            raise RunFailed(
                f"run #{run_id} computed and recorded all its scores, but marking it finished failed "
                f"({type(exc).__name__}: {exc}); `harness run --resume {run_id}` evaluates it again and finishes it."
            ) from None
    return run_id


def _reporter(names: Sequence[str], run_id: int, run_uuid: str, resolved: dict[str, Any], store: RunStore, output_root: Path, warn: Any) -> Reporter:
    """The run's trackers, told the resolved config and where the run is recorded."""
    from harness.trackers import Reporter, flat_config

    identity = {"harness.run_id": run_id, "harness.run_uuid": run_uuid, "harness.config_hash": config_hash(resolved),
                "harness.leaderboard": str(store.location)}
    return Reporter(names, run_folders.folder_name(run_id, run_uuid), output_root, {**flat_config(resolved), **identity}, warn)


def _train(
    plan: RunPlan, method: Method, backbone: Any, recorder: Recorder, console: Console,
    output_dir: Path, *, resume: bool,
) -> bool:
    """Train ``method``'s stages; True when a sharding engine was used (the model is sharded
    then, and evaluation needs the backbone reloaded from the final checkpoint)."""
    from harness.progress import training_progress
    from harness.telemetry import Phase
    from harness.training import prepare_model, run_stages

    if not isinstance(method.config, TrainConfig):
        raise HarnessError(f"method {plan.config.method!r} has stages but its Config is not a TrainConfig.")
    prepare_model(backbone, method.config)
    method.prepare(backbone)
    recorder.model(trainable_parameters=sum(p.numel() for p in backbone.model.parameters() if p.requires_grad))
    with training_progress(console, enabled=distributed.world().is_main) as progress:
        reports = run_stages(
            backbone, method.stages(), method.config, train_data=plan.config.train_data,
            seed=plan.config.seed, output_dir=output_dir, hooks=recorder, progress=progress, resume=resume,
        )
    for report in reports:
        phase = Phase(f"train:{report.stage}", report.seconds, report.samples, report.tokens, report.peak_memory_bytes)
        recorder.timing(
            phase,
            details={
                "steps": report.steps,
                "samples_per_s": report.samples / max(report.seconds, 1e-9),
                "tokens_per_s": report.tokens / max(report.seconds, 1e-9),
                "world_size": report.world_size,
                "per_device_batch": report.per_device_batch,
                "effective_batch": report.effective_batch,
                "engine": report.engine,
                "model_flops": report.model_flops,
                "peak_flops_per_s": report.peak_flops_per_s,
                "mfu": report.mfu,
            },
        )
        if distributed.world().is_main:
            mfu = "" if report.mfu is None else f", MFU {100 * report.mfu:.1f}%"
            console.print(
                f"  trained {report.stage}: {report.steps} steps in {report.seconds:.1f} s "
                f"({report.tokens / max(report.seconds, 1e-9):.0f} tokens/s{mfu})"
            )
    return for_training(method.config).sharded


def _execute(
    plan: RunPlan, backbone: Any, tasks: list[AbsTask], resolved: dict, recorder: Recorder, console: Console,
    output_dir: Path | None, *, resume: bool,
) -> None:
    method = plan.method_cls(plan.method_config)
    if method.stages():
        assert output_dir is not None
        sharded = _train(plan, method, backbone, recorder, console, output_dir, resume=resume)
        if sharded and distributed.world().is_main:
            del backbone  # sharded in place: encode from the final checkpoint instead
            backbone = _restore_trained(plan, method, output_dir, console)
    else:
        method.prepare(backbone)
        recorder.model(trainable_parameters=0)
    if not distributed.world().is_main:
        return  # rank 0 evaluates; the others are done once training is
    if distributed.world().enabled:
        distributed.use_all_cores(backbone.device)
    evaluate(plan, method, backbone, tasks, resolved, recorder, console)


def evaluate(
    plan: RunPlan, method: Method, backbone: Any, tasks: list[AbsTask], resolved: dict,
    recorder: Recorder, console: Console,
) -> None:
    """Evaluate ``method``'s encoder on ``tasks`` through mteb and record each task's scores."""
    import mteb
    import torch

    from harness.encoder import EncodeSettings
    from harness.mteb_adapter import MtebEncoder, model_meta, model_name
    from harness.progress import encoding_progress
    from harness.telemetry import measure

    settings = EncodeSettings(batch_size=plan.config.batch_size, max_length=plan.config.max_length)
    encoder = method.build_encoder(backbone, settings)
    recorder.model(n_parameters=backbone.n_parameters, embed_dim=encoder.embed_dim)
    digest = config_hash(resolved)
    adapter = MtebEncoder(
        encoder,
        model_meta(
            name=model_name(plan.config.method, plan.backbone.name),
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
            with encoding_progress(console, spec.name, texts_to_encode(task)) as advance:
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
        main_score, details, whole = _task_scores(result.task_results[0])
        faults.point("evaluate")
        recorder.score(spec.name, scored_version(plan, spec, task), main_metric, main_score, details, whole)
        recorder.timing(phase, details={"threads": torch.get_num_threads()} if backbone.device.type == "cpu" else None)
        console.print(f"  {spec.name}: {main_metric} = {100 * main_score:.2f}  ({phase.seconds:.1f} s)")


def scored_version(plan: RunPlan, spec: TaskSpec, task: AbsTask) -> str:
    """The version a score of ``task`` is recorded under: its data's, marked when ``--limit`` cut it."""
    return limited_version(task_version(spec, task), plan.config.limit)


def refuse_changed_tasks(plan: RunPlan, record: dict[str, Any]) -> None:
    """``--resume`` evaluates the recorded tasks: a task file whose content changed since (another
    sha256) would put another task's score under the run's recorded config."""
    recorded = {spec.get("name"): spec for spec in record["config"].get("tasks_resolved", [])}
    for spec in plan.tasks:
        before = recorded.get(spec.name, {}).get("sha256")
        if spec.pairs is not None and before is not None and before != spec.pairs.digest:
            raise HarnessError(
                f"task file {spec.pairs.path} changed since run {record['run_id']} was recorded (sha256 {before[:12]}, "
                f"now {spec.pairs.digest[:12]}); a resumed run evaluates the data it was recorded with. Restore the file, "
                "or start a new run."
            )


def refuse_known_tasks(record: dict[str, Any], wanted: list[tuple[str, str]]) -> None:
    """Raise ``HarnessError`` if the run has a score for any (task, version) of ``wanted``'s names."""
    have = record.get("task_versions", {})
    for name, version in wanted:
        if name not in have:
            continue
        if have[name] == version:
            raise HarnessError(
                f"run {record['run_id']} has a score for task {name} (version {version}) already; "
                "add --force to compute it again and replace it."
            )
        raise HarnessError(
            f"run {record['run_id']} has a score for task {name} from other data (version {have[name] or 'unknown'}; "
            f"this one is {version}). Give the file another name to evaluate it as a task of its own, or add --force "
            "to replace the recorded score."
        )


def _restore_trained(plan: RunPlan, method: Method, output_dir: Path, console: Console) -> Any:
    """A fresh, unsharded backbone with the latest checkpoint's trained weights, ready to encode."""
    from harness.training import latest_checkpoint, load_trainable, prepare_model

    checkpoint = latest_checkpoint(output_dir)
    if checkpoint is None:
        raise HarnessError(f"no checkpoint to evaluate in {output_dir}.")
    with console.status("Loading backbone") as status:
        backbone = load_backbone(plan.backbone, plan.config.device, plan.config.dtype, status)
    config = dataclasses.replace(method.config, gradient_checkpointing=False)
    prepare_model(backbone, config)
    method.prepare(backbone)
    load_trainable(backbone.model, checkpoint)
    backbone.model.eval()
    return backbone


def restore_model(record: dict[str, Any], console: Console) -> tuple[Method, Any]:
    """A finished run's method and backbone as they encoded (for export); task and training files
    need not exist any more."""
    if record["status"] != "finished":
        raise HarnessError(f"run {record['run_id']} is {record['status']}; only finished runs can be exported.")
    quiet_libraries()
    config = recorded_config(record)
    method_cls = registry.get_method(config.method)
    plan = RunPlan(config, method_cls, method_options(method_cls, config.method_args, config.method), resolve(config.backbone), [])
    require_available(plan.backbone)
    method = method_cls(plan.method_config)
    return method, _encoding_backbone(plan, method, record, console, purpose="export")


def _encoding_backbone(plan: RunPlan, method: Method, record: dict[str, Any], console: Console, *, purpose: str) -> Any:
    """The backbone reloaded as the recorded run encoded: with the trained weights of the run's
    final checkpoint (trained methods), else as ``prepare`` leaves it."""
    if method.stages():
        folder = run_folders.own_folder(record, None, purpose=purpose)
        if folder is None:
            raise HarnessError(f"run {record['run_id']} has no output folder with checkpoints to {purpose}.")
        return _restore_trained(plan, method, folder, console)
    with console.status("Loading backbone") as status:
        backbone = load_backbone(plan.backbone, plan.config.device, plan.config.dtype, status)
    method.prepare(backbone)
    return backbone


def reevaluate(plan: RunPlan, store: RunStore, record: dict[str, Any], console: Console, *, force: bool = False) -> None:
    """Evaluate a finished run's encoder on ``plan.tasks`` without retraining; scores join its row.

    A task the run has a score for already is refused (before the model is loaded) unless
    ``force``: the same version would only be computed again, and another version under the same
    name (another file with the same stem) would replace a score the run's comparisons rest on.
    """
    from harness.telemetry import measure

    quiet_libraries()
    with console.status("Loading task data"):
        tasks = load_tasks(plan.tasks, plan.config.limit)
    if not force:
        refuse_known_tasks(record, [(spec.name, scored_version(plan, spec, task)) for spec, task in zip(plan.tasks, tasks)])
    recorder = Recorder(store, record["run_id"])
    seed_everything(plan.config.seed)
    method = plan.method_cls(plan.method_config)
    with measure("load") as phase:
        backbone = _encoding_backbone(plan, method, record, console, purpose="evaluate")
    recorder.timing(phase)
    evaluate(plan, method, backbone, tasks, record["config"], recorder, console)
