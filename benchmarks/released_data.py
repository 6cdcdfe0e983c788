"""Where the benchmarks find the public datasets as released (docs/tasks.md names each and its hub
source): the folder ``--data DIR`` names (or ``HARNESS_DATA``; children of a benchmark inherit
it), laid out as released: ``stsb/sts-dev.csv``, ``sick/SICK_train.txt``, ... Without one, a
benchmark falls back to the offline data the harness ships."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ENV = "HARNESS_DATA"
SICK_TRAIN = "sick/SICK_train.txt"
STSB_DEV = "stsb/sts-dev.csv"


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, help=f"a folder of the released datasets (env {ENV}); else the offline data"
    )


def use(args: argparse.Namespace) -> None:
    """Make ``--data`` the folder this process and its children read."""
    if args.data is not None:
        os.environ[ENV] = str(args.data.expanduser().resolve())


def released(relative: str) -> Path | None:
    """The file ``relative`` of the released datasets, or None where no folder is given or it lacks it."""
    root = os.environ.get(ENV)
    path = Path(root) / relative if root else None
    return path if path is not None and path.is_file() else None


def triplet_source() -> str:
    """SICK-train as triplets where given, else the offline triplets."""
    path = released(SICK_TRAIN)
    return str(path) if path else "offline"
