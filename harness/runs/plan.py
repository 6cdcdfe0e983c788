"""A run's plan: every input a user can get wrong (method, options, backbone, tasks, training
data, sharding) checked, and the objects they make built once, before anything is recorded."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import registry
from harness.config import CONFIG_VERSION, RunConfig, build_dataclass, config_hash
from harness.data.local_data import file_digest
from harness.data.train_data import source_files
from harness.errors import HarnessError, unknown_name
from harness.evaluation.contamination import TrainingData
from harness.evaluation.embedding_cache import CacheSettings
from harness.evaluation.evaluate import Evaluation
from harness.evaluation.tasks import TaskSpec, resolve_tasks
from harness.method import Method, MethodConfig
from harness.model.backbones import BackboneSpec, backbone_spec, require_available
from harness.options import check_values
from harness.paths import writable_folder
from harness.training import TrainConfig
from harness.training.parameters import check_trainable
from harness.training.sharding import for_training

if TYPE_CHECKING:
    from harness.evaluation.contamination import TrainingData
    from harness.training.sharding import Sharding


@dataclass
class RunPlan:
    """A run whose every input has been checked: the one ``Method`` object of the run, and its
    sharding settings (trained methods) resolved once."""

    config: RunConfig
    method: Method
    backbone: BackboneSpec
    tasks: list[TaskSpec]
    sharding: Sharding | None = None
    dev_tasks: list[TaskSpec] = field(default_factory=list)  # --dev-tasks: evaluated during training
    #: the files --train-data reads, each as given with its sha256 when the plan checked them (trained methods)
    training_files: list[dict[str, str]] = field(default_factory=list)

    @property
    def trains(self) -> bool:
        return bool(self.method.stages())

    def resolved(self) -> dict[str, Any]:
        """The fully resolved config that is recorded (and hashed, seed aside).

        Its ``RunConfig`` keys rebuild the run (``--resume``, ``harness eval``); ``method_args``
        holds every option with its default filled in, ``attention`` the method's mode, and the
        ``*_resolved`` keys say what the backbone and tasks were (source, file digests). Every
        option is recorded; ``config_version`` says which harness config format this is (the
        leaderboard's migrations rewrite older rows to it).
        """
        values = dataclasses.asdict(self.config)
        values["method_args"] = dataclasses.asdict(self.method.config)
        values["backbone_resolved"] = {"source": self.backbone.source, "kind": self.backbone.kind}
        values["tasks_resolved"] = [spec.record() for spec in self.tasks]
        if self.dev_tasks:
            values["dev_tasks_resolved"] = [spec.record() for spec in self.dev_tasks]
        values["config_version"] = CONFIG_VERSION
        values["attention"] = self.method.attention
        del values["rerank_protocol"]  # each reranking file's entry of tasks_resolved says it (none: "all")
        if not self.trains:
            values["train_data"] = None  # untrained: the training data cannot change the result
        elif self.training_files:
            values["train_data_resolved"] = self.training_files
        return values

    def evaluation(self, resolved: dict[str, Any], cache: CacheSettings | None = None) -> Evaluation:
        """How the encoder is evaluated, named after the run's recorded config ``resolved``; with
        the embedding cache of ``cache`` (default: on, in its default folder)."""
        config = self.config
        return Evaluation(
            method=config.method,
            backbone=self.backbone.name,
            source=self.backbone.source,
            revision=config_hash(resolved)[:12],
            batch_size=config.eval_batch_size,
            max_length=config.max_length,
            limit=config.limit,
            instructions=config.instructions,
            cache=cache or CacheSettings(),
            dims=tuple(config.dims),
            training=self.training_data(resolved),
        )

    def training_data(self, resolved: dict[str, Any]) -> TrainingData | None:
        """What a trained run read, with the file digests of its record ``resolved``: each task's
        overlap with it is measured (:mod:`harness.evaluation.contamination`)."""

        if not self.trains or not self.config.train_data:
            return None
        kinds = tuple(sorted({getattr(stage, "data_kind", "triplets") for stage in self.method.stages()}))
        files = tuple((entry["source"], entry["sha256"]) for entry in resolved.get("train_data_resolved", []))
        return TrainingData(self.config.train_data, self.config.seed, kinds, files)

    @property
    def task_spec(self) -> str:
        """The tasks as asked for; a quick check says so (``offline --limit 50``)."""
        limit = "" if self.config.limit is None else f" --limit {self.config.limit}"
        return ",".join(self.config.tasks) + limit


def recorded_config(record: dict[str, Any]) -> RunConfig:
    """The ``RunConfig`` a recorded run was made from (for ``--resume`` and ``harness eval``)."""
    stored = record["config"]
    if "batch_size" in stored and "eval_batch_size" not in stored:  # version 1, written after an upgrade
        stored = {**stored, "eval_batch_size": stored["batch_size"]}
    names = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in stored.items() if k in names and v is not None}
    reranking = [
        spec
        for spec in [*stored.get("tasks_resolved", []), *stored.get("dev_tasks_resolved", [])]
        if spec.get("type") == "Reranking"
    ]
    if reranking:  # the protocol its reranking files were scored under; none recorded: every question (mteb's)
        values["rerank_protocol"] = reranking[0].get("protocol", "all")
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
            raise unknown_name(f"preset of method {name!r}", str(preset), method_cls.presets)
        values = {**method_cls.presets[preset], **values}
    config = build_dataclass(method_cls.Config, values, f"method {name!r}", prefix="method_args.")
    check_values(config, f"method {name!r}", prefix="method_args.")
    return config


def build_method(config: RunConfig) -> Method:
    """The run's method object, from its registered name and ``method_args``."""
    method_cls = registry.get_method(config.method)
    return method_cls(method_options(method_cls, config.method_args, config.method))


def plan_run(config: RunConfig) -> RunPlan:
    """Check every input (method, options, backbone, tasks, training data) before anything is
    recorded; a problem raises ``HarnessError``."""

    method = build_method(config)
    backbone = backbone_spec(config.backbone)
    require_available(backbone)
    tasks = resolve_tasks(config.tasks, rerank_protocol=config.rerank_protocol)
    dev_tasks = resolve_tasks(config.dev_tasks, "--dev-tasks", config.rerank_protocol) if config.dev_tasks else []
    method.check_inputs(config.train_data, config.seed)  # options and training data
    sharding = None
    if method.stages():
        if not isinstance(method.config, TrainConfig):
            raise HarnessError(f"method {config.method!r} has stages but its Config is not a TrainConfig.")
        check_trainable(method.config, method.own_parameters)
        sharding = for_training(method.config)  # a bad sharding choice or config file stops the run here
    check_dev_tasks(config, method, sharding)
    files = training_files(config.train_data) if method.stages() else []
    return RunPlan(config, method, backbone, tasks, sharding, dev_tasks, files)


def check_dev_tasks(config: RunConfig, method: Method, sharding: Sharding | None) -> None:
    """``--dev-tasks`` and ``method_args.eval_every`` come together, on a trained method whose
    model stays whole while it trains (a sharded one cannot encode mid-training)."""
    every = getattr(method.config, "eval_every", None)
    if config.dev_tasks and not method.stages():
        raise HarnessError(
            f"--dev-tasks: method {config.method!r} does not train; dev tasks are evaluated during training."
        )
    if config.dev_tasks and every is None:
        raise HarnessError("--dev-tasks needs method_args.eval_every=N: evaluate them every N optimizer steps.")
    if every is not None and not config.dev_tasks:
        raise HarnessError(f"method_args.eval_every={every} needs --dev-tasks: the tasks to evaluate during training.")
    if every is not None and sharding is not None and sharding.sharded:
        raise HarnessError(
            f"method_args.eval_every: a sharded model ({sharding.engine}) cannot encode while it trains; "
            "evaluate dev tasks with the replicated engine (method_args.sharding=none)."
        )


def without_dev_tasks(config: RunConfig) -> RunConfig:
    """``config`` as ``harness eval`` plans it: its saved encoder is evaluated, nothing trains, so
    the dev tasks and their options (recorded with the run) are not asked for."""
    method_args = {k: v for k, v in config.method_args.items() if k not in ("eval_every", "keep_best")}
    return dataclasses.replace(config, dev_tasks=[], method_args=method_args)


def plan_restore(record: dict[str, Any]) -> RunPlan:
    """The plan of a recorded run, to rebuild its encoder (export, ``harness eval``): no tasks,
    and its task and training files need not exist any more."""
    config = recorded_config(record)
    plan = RunPlan(config, build_method(config), backbone_spec(config.backbone), [])
    require_available(plan.backbone)
    return plan


def check_output_root(root: Any) -> None:
    """Refuse, before anything is recorded, an ``--output-dir`` that cannot be created or written."""
    writable_folder(root, "--output-dir")


def refuse_changed_tasks(plan: RunPlan, record: dict[str, Any], doing: str = "a resumed run evaluates") -> None:
    """``--resume`` and ``--like`` evaluate the recorded tasks: a task file whose content changed
    since (another sha256) would put another task's score under the run's recorded config."""
    recorded = {spec.get("name"): spec for spec in record["config"].get("tasks_resolved", [])}
    for spec in plan.tasks:
        before = recorded.get(spec.name, {}).get("sha256")
        if spec.data is not None and before is not None and before != spec.data.digest:
            raise HarnessError(
                f"task file {spec.data.path} changed since run {record['run_id']} was recorded (sha256 {before[:12]}, "
                f"now {spec.data.digest[:12]}); {doing} the data it was recorded with. Restore the file, "
                "or start a new run."
            )


def training_files(train_data: str) -> list[dict[str, str]]:
    """The files ``--train-data`` reads: each as given, with its sha256."""

    return [{"source": source, "sha256": file_digest(path)} for source, path in source_files(train_data)]


def refuse_changed_training_data(
    plan: RunPlan, record: dict[str, Any], doing: str = "a resumed run trains on"
) -> None:
    """``--resume`` and ``--like`` train on the recorded data: a training file whose content
    changed since (another sha256) would train on other data under the recorded config."""
    now = {entry["source"]: entry["sha256"] for entry in plan.training_files}
    for entry in record["config"].get("train_data_resolved", []):
        found = now.get(entry["source"])
        if found != entry["sha256"]:
            state = "is gone" if found is None else f"changed (sha256 {entry['sha256'][:12]}, now {found[:12]})"
            raise HarnessError(
                f"training file {entry['source']} {state} since run {record['run_id']} was recorded; {doing} "
                "the data it was recorded with. Restore the file, or start a new run."
            )


def refuse_changed_backbone(plan: RunPlan, record: dict[str, Any]) -> None:
    """``--like`` loads the recorded backbone: an alias that now resolves elsewhere is another model."""
    before = record["config"].get("backbone_resolved", {}).get("source")
    if before is not None and before != plan.backbone.source:
        raise HarnessError(
            f"backbone {plan.config.backbone!r} now resolves to {plan.backbone.source}, not {before} as when run "
            f"{record['run_id']} was recorded; give --set backbone=... to run another model on purpose."
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
