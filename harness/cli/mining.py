"""`harness mine`: hard negatives mined by an encoder, written to a triplet file to train on."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import DEFAULT_DB, DbOption, PluginsOption, app, err_console
from harness.cli.database import announce, read_store
from harness.cli.failures import user_errors
from harness.config import DEFAULT_BACKBONE


@app.command()
def mine(
    sources: Annotated[
        str,
        typer.Argument(
            help="Positive pairs: triplet, NLI or STS files (or offline) joined with +, as after mined-negatives:."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The triplet file to write (JSON lines); an existing file is refused."),
    ],
    miner: Annotated[
        str,
        typer.Option(
            "--miner",
            help="An untrained method on --backbone (untrained-mean, untrained-last, ...) or a recorded run's encoder: run:ID.",
        ),
    ] = "untrained-mean",
    backbone: Annotated[
        Optional[str],
        typer.Option(
            help=f"The untrained miner's backbone (alias, hub id or local folder; default {DEFAULT_BACKBONE})."
        ),
    ] = None,
    absolute_margin: Annotated[
        Optional[float],
        typer.Option(
            "--absolute-margin", min=0, help="Skip candidates scoring above the positive's cosine minus this."
        ),
    ] = None,
    relative_margin: Annotated[
        Optional[float],
        typer.Option(
            "--relative-margin",
            min=0,
            max=1,
            help="Skip candidates scoring above positive - |positive| x this (0.05: within 5%).",
        ),
    ] = None,
    device: Annotated[
        Optional[str], typer.Option(help="The untrained miner's device: auto (default), cpu, cuda, cuda:N, mps, ...")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Texts per forward pass.")] = 32,
    max_length: Annotated[int, typer.Option("--max-length", min=8, help="Tokens per text, template included.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed of sources that draw (offline).")] = 0,
    db: DbOption = DEFAULT_DB,
    plugins: PluginsOption = None,
) -> None:
    """Mine a hard negative for each positive pair with an encoder: the most similar other text,
    skipping those within a margin of the positive (likely false negatives). The triplets go to
    --output, how they were mined (miner, margins, source sha256s) to OUTPUT.provenance.json;
    train on them with `harness run --train-data OUTPUT` (the run records the file's sha256).

    Examples:

    ```
    harness mine pairs.tsv -o mined.jsonl
    harness mine pairs.tsv -o mined.jsonl --relative-margin 0.05
    ```
    """
    with user_errors():
        from harness.data.train_data import parse_source, read_pairs
        from harness.encoder import EncodeSettings
        from harness.errors import HarnessError
        from harness.registry import import_plugins
        from harness.runs.mining import (
            Margins,
            mine_negatives,
            provenance_path,
            recorded_miner,
            run_id_of,
            untrained_miner,
            write_mined,
        )
        from harness.runs.plan import training_files

        import_plugins(plugins or [])
        for name, value in (("--absolute-margin", absolute_margin), ("--relative-margin", relative_margin)):
            if value is not None and not math.isfinite(value):
                raise HarnessError(f"{name} {value}: give a finite number.")
        run_id = run_id_of(miner)
        if run_id is not None:
            if backbone is not None or device is not None:
                raise HarnessError(
                    f"--miner {miner}: a recorded run encodes with its own backbone and device; drop --backbone and --device."
                )
            announce(db)
        for path in (output, provenance_path(output)):
            if path.exists() or path.is_symlink():
                raise HarnessError(
                    f"--output {output}: {path} exists; mined negatives never replace a file. Choose another name."
                )
        if not output.parent.is_dir():
            raise HarnessError(f"--output {output}: no folder {output.parent}.")
        mode, parts = parse_source(sources)
        if mode not in (None, "mined"):
            raise HarnessError(
                f"harness mine {sources!r}: give the positive pairs (A+B or mined-negatives:A+B), not {mode}-negatives."
            )
        files = training_files(sources)
        pairs = [pair for part in parts for pair in read_pairs(part, seed)]
        if training_files(sources) != files:
            raise HarnessError(f"harness mine {sources!r}: a source file changed while it was read; mine again.")
        settings = EncodeSettings(batch_size=batch_size, max_length=max_length)
        if run_id is None:
            encoder, described = untrained_miner(
                miner, backbone or DEFAULT_BACKBONE, device or "auto", settings, err_console
            )
        else:
            encoder, described = recorded_miner(read_store(db, False, [run_id]).get_run(run_id), settings, err_console)
        margins = Margins(absolute_margin, relative_margin)
        with err_console.status(f"Embedding the texts of {len(pairs)} pairs"):
            mined = mine_negatives(pairs, lambda texts: encoder.encode(texts), margins)
        provenance = {
            "sources": sources,
            "source_files": files,
            "seed": seed,
            **described,
            "absolute_margin": absolute_margin,
            "relative_margin": relative_margin,
            "max_length": max_length,
            "pairs": len(pairs),
        }
        digest = write_mined(mined, output, provenance)
    err_console.print(
        f"Mined {len(mined.triplets)} triplets into {output} (sha256 {digest[:12]}); {len(mined.dropped)} pair(s) had no "
        f"candidate under the margins and were dropped, {mined.skipped} candidate(s) skipped. Train on them with "
        f"`harness run --train-data {output}`; how they were mined: {provenance_path(output)}.",
        highlight=False,
        soft_wrap=True,
    )
