"""Write the development STS tasks as harness task files, from ../shared/data.

    .venv/bin/python benchmarks/dev_tasks.py [OUT_DIR]      # default: dev-tasks/

Writes OUT_DIR/stsb-dev.tsv (STS Benchmark dev, 1,500 pairs, scores 0-5) and
OUT_DIR/sick-trial.tsv (SICK trial, 500 pairs, relatedness 1-5), each with the columns sentence1,
sentence2, score, so that `harness run --tasks dev-tasks/stsb-dev.tsv --tasks
dev-tasks/sick-trial.tsv` evaluates on them (task names stsb-dev and sick-trial). These are the
splits to tune and compare on; the test splits are never used here. Also writes
OUT_DIR/stsb-train.tsv (STS-B train, 5,749 pairs) in the same layout, a source of positive pairs
for training data such as `random-negatives:../shared/data/sick/SICK_train.txt+dev-tasks/stsb-train.tsv`.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _stsb(path: Path) -> list[tuple[str, str, str]]:
    """STS-B's own layout: no header, tab-separated genre, source, year, id, score, s1, s2 (some
    rows carry extra trailing fields)."""
    with path.open(encoding="utf-8") as handle:
        return [(row[5], row[6], row[4]) for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _sick(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["sentence_A"], r["sentence_B"], r["relatedness_score"]) for r in rows]


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    sources = {
        "stsb-dev": _stsb(SHARED / "stsb" / "sts-dev.csv"),
        "sick-trial": _sick(SHARED / "sick" / "SICK_trial.txt"),
        "stsb-train": _stsb(SHARED / "stsb" / "sts-train.csv"),
    }
    for name, rows in sources.items():
        target = out / f"{name}.tsv"
        lines = ["sentence1\tsentence2\tscore"] + ["\t".join(row) for row in rows]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(target)
    return written


def main() -> None:
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is absent: the development data lives beside the project.")
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "dev-tasks")):
        print(path)


if __name__ == "__main__":
    main()
