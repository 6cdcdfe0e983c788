"""The ``harness`` command line (typer + rich), one module per group of commands.

Heavy libraries (torch, transformers, mteb, sqlalchemy) are imported inside the commands that use
them, so ``harness --help`` answers fast. Bad input ends with one paragraph on stderr and exit 2.
"""

from harness.cli import running, comparing, reading, exporting, mining, listings  # noqa: F401, I001  (each registers its commands, in this order)
from harness.cli.app import app, main

__all__ = ["app", "main"]
