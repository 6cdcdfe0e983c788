"""Start-up: `harness --help` against `python -c "import torch, transformers"`, side by side.

    .venv/bin/python benchmarks/startup.py [--repeats 7]

Both commands run alternately as fresh processes; medians of wall time and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    help_cmd = [sys.executable, "-m", "harness", "--help"]
    import_cmd = [sys.executable, "-c", "import torch, transformers"]
    wall(help_cmd), wall(import_cmd)  # warm the file cache for both
    helps, imports = [], []
    for _ in range(args.repeats):
        helps.append(wall(help_cmd))
        imports.append(wall(import_cmd))
    h, i = statistics.median(helps), statistics.median(imports)
    print(f"harness --help: {h * 1000:.0f} ms; import torch, transformers: {i * 1000:.0f} ms; ratio {h / i:.3f}")


if __name__ == "__main__":
    main()
