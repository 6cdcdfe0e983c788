"""The options of `harness run` and `harness eval`, as typer annotations (their help texts are
what `harness run --help` shows)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import ROW_LIMIT

DEFAULT_LIMIT_GB = 20.0  # the embedding cache's size cap (harness.evaluation.embedding_cache.DEFAULT_LIMIT_GB)


MethodOption = Annotated[Optional[str], typer.Option(help="Method name (see `harness methods`).")]
BackboneOption = Annotated[Optional[str], typer.Option(help="Alias, hub id or local folder.")]
TasksOption = Annotated[
    Optional[list[str]],
    typer.Option("--tasks", help="Preset, mteb task name or .tsv/.csv/.jsonl file (repeatable, or a,b)."),
]
DevTasksOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--dev-tasks",
        help="Tasks (as --tasks) evaluated during training every method_args.eval_every steps and at each stage's end: dev scores, never test scores (repeatable).",
    ),
]
TrainDataOption = Annotated[
    Optional[str],
    typer.Option(
        "--train-data",
        help=(
            "What the method's stages read: triplets (triplet or NLI file, all-nli, simcse-nli, offline = default) "
            "or texts (.txt one a line, a file with a text column, wiki1m, wikitext-103, or a triplet source's texts); "
            "join sources with +."
        ),
    ),
]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="TOML config file.")]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override KEY=VALUE (e.g. eval_batch_size=16, method_args.lr=1e-4)."),
]
SeedOption = Annotated[Optional[int], typer.Option(help="Random seed (default 0).")]
DeviceOption = Annotated[Optional[str], typer.Option(help="auto (default), cpu, cuda, cuda:N, mps, ...")]
EvalBatchSizeOption = Annotated[
    Optional[int],
    typer.Option(
        "--eval-batch-size",
        help="Texts per forward pass when encoding for evaluation (default 32; training's: method_args.batch_size).",
    ),
]
LimitOption = Annotated[
    Optional[int],
    typer.Option(
        "--limit",
        min=1,
        max=ROW_LIMIT,
        help="Evaluate on the first N items of each task: a quick check, recorded as such and never ranked with full runs.",
    ),
]
InstructionsOption = Annotated[
    Optional[bool],
    typer.Option(
        "--instructions",
        help="e5 style: put each task's mteb instruction before its queries and symmetric texts (documents stay bare).",
    ),
]
DimsOption = Annotated[
    Optional[str],
    typer.Option(
        "--dims",
        metavar="N,N,...",
        help="Also score each task on the vectors' first N dims (e.g. 64,128,256: Matryoshka evaluation); each is a score of its own, from the same encoding.",
    ),
]
LikeOption = Annotated[
    Optional[int],
    typer.Option(
        "--like",
        min=1,
        help="Run again exactly what run N ran (its recorded config, tasks and data; a changed file is refused); vary one thing with --seed, --seeds, --tasks, --dims or --set.",
    ),
]
SeedsOption = Annotated[
    Optional[str],
    typer.Option(
        "--seeds",
        metavar="S,S,...",
        help="Run the config once per seed (e.g. 0,1,2): one run each, grouped by `compare --by-config`.",
    ),
]
NoCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        metavar="",
        help="Compute every vector: neither read nor fill the embedding cache kept across runs.",
    ),
]
CacheLimitOption = Annotated[
    float,
    typer.Option(
        "--cache-limit-gb",
        min=0.001,
        max=1e6,
        help="Size cap of the embedding cache (HARNESS_EMBEDDING_CACHE, default HARNESS_CACHE/embeddings): the oldest entries go first.",
    ),
]
BaselineOption = Annotated[
    bool,
    typer.Option(
        "--baseline/--no-baseline",
        envvar="HARNESS_BASELINE",
        help="Also evaluate the method's training-free baseline (same backbone, template and tasks; `harness methods` names it) and close with the two compared (env HARNESS_BASELINE).",
    ),
]
ResumeOption = Annotated[
    Optional[int], typer.Option("--resume", help="Continue this failed/interrupted run from its last checkpoint.")
]
OutputDirOption = Annotated[
    Path,
    typer.Option(
        "--output-dir",
        help="Where trained runs keep checkpoints: a new run-ID-UUID/ folder per run. With "
        "--resume: where to look for the run's folder if it was moved.",
    ),
]
ReportToOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--report-to",
        help="Also log to tensorboard, mlflow or wandb (repeatable; each an extra). Files go under --output-dir.",
    ),
]
