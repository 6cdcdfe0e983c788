"""Count what hostile input does to a checkout of the harness: tracebacks, wrong exit codes, run
rows recorded, checkpoint folders and files left behind.

Every case is one real ``harness`` process in a fresh folder (as a user would meet it), expected
to be refused with exit code 2 and to leave that folder as it was. A case still running after
``--timeout`` seconds is killed and counts as accepted (a wrong exit code, plus whatever it left).

    python benchmarks/hostile_probe.py                       # this checkout
    python benchmarks/hostile_probe.py --source OLD_CHECKOUT # another one, e.g. a git worktree

The generated suites in tests/reliability assert the same properties case by case; this script
gives the before/after counts of docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

STS = "sentence1\tsentence2\tscore\na cat sits\ta cat is sitting\t5\na dog runs\tthe sky is blue\t0\nbirds fly\tbirds are flying\t4\n"
TRAIN = "".join(json.dumps({"query": f"q{i}", "pos": f"p{i}", "neg": f"n{i}"}) + "\n" for i in range(8))
SMALL = [
    "--tasks",
    "{sts}",
    "--set",
    "method_args.steps=1",
    "--set",
    "method_args.max_examples=8",
    "--set",
    "method_args.ic_steps=1",
    "--set",
    "method_args.cda_steps=1",
    "--train-data",
    "{train}",
]


def _option_cases() -> list[tuple[str, list[str]]]:
    values = {
        "infonce": [
            "batch_size=0",
            "lr=nan",
            "lr=inf",
            "lora_r=0",
            "lora_dropout=1.5",
            "max_length=1",
            "temperature=0",
            "template='Q: {tex}'",
            'lora_targets=["no_such_module"]',
            "lora_targets=[]",
            "steps=-1",
            "grad_accum=0",
            "epochs=0",
            "warmup_ratio=2.0",
            "steps=1000000000000000000000000000000",
            "lora_alpha=0",
            "checkpoint_every=-3",
            "weight_decay=-1.0",
        ],
        "autoregembed": [
            "slots=-1",
            "slots=0",
            "beta=0",
            "tau=-1.0",
            "ic_lr=-1.0",
            "instruction='{text}'",
            "stages=[]",
        ],
        "untrained-mean": ["template='no slot'", "template='{text}{text}'"],
    }
    cases = [
        (f"{m} method_args.{v}", ["run", "--method", m, *SMALL, "--set", f"method_args.{v}"])
        for m, vs in values.items()
        for v in vs
    ]
    for setting in (
        "seed=99999999999",
        "seed=-1",
        "device=meta",
        "device=cuda",
        "eval_batch_size=0",
        "max_length=2",
        "eval_batch_size=99999999999999",
    ):
        cases.append((f"--set {setting}", ["run", "--method", "untrained-mean", "--tasks", "{sts}", "--set", setting]))
    cases.append(
        (
            "untrained-last max_length vs template",
            ["run", "--method", "prompteol", "--tasks", "{sts}", "--set", "max_length=8"],
        )
    )
    return cases


KINDS = ("symlink loop", "fifo", "through a file", "name too long", "unknown user", "a folder", "dangling link")
PATH_OPTIONS = {
    "--tasks": ("t.tsv", ["run", "--method", "untrained-mean", "--tasks", "{path}"]),
    "--train-data": ("d.jsonl", ["run", "--method", "infonce", "--tasks", "{sts}", "--train-data", "{path}"]),
    "--config": ("c.toml", ["run", "--config", "{path}"]),
    "--db": ("h.db", ["run", "--method", "untrained-mean", "--tasks", "{sts}", "--db", "{path}"]),
    "--output-dir": ("out", ["run", "--method", "infonce", *SMALL, "--output-dir", "{path}"]),
    "export --csv": ("r.csv", ["export", "--csv", "{path}", "--db", "{existing_db}"]),
    "export --json": ("r.json", ["export", "--json", "{path}", "--db", "{existing_db}"]),
    "plot --out": ("l.png", ["plot", "1", "--out", "{path}", "--db", "{existing_db}"]),
}


def _make_path(folder: Path, kind: str, name: str) -> Path:
    if kind == "symlink loop":
        (folder / f"a{name}").symlink_to(folder / f"b{name}")
        (folder / f"b{name}").symlink_to(folder / f"a{name}")
        return folder / f"a{name}"
    if kind == "fifo":
        os.mkfifo(folder / name)
        return folder / name
    if kind == "through a file":
        (folder / "plain").write_text("x")
        return folder / "plain" / name
    if kind == "name too long":
        return folder / ("n" * 300 + name)
    if kind == "unknown user":
        return Path(f"~no-such-user-{folder.name}/{name}")
    if kind == "a folder":
        (folder / name).mkdir()
        return folder / name
    (folder / name).symlink_to(folder / "gone")
    return folder / name


FILE_TEXT = {
    "scores +-1e300": ("s.tsv", "sentence1\tsentence2\tscore\na\tb\t1e300\nc\td\t-1e300\n"),
    "duplicate columns": ("d.tsv", "sentence1\tsentence2\tscore\tscore\na\tb\t1\t2\nc\td\t2\t1\n"),
    "score of 400 digits": (
        "big.jsonl",
        '{"sentence1": "a", "sentence2": "b", "score": 1}\n'
        '{"sentence1": "c", "sentence2": "d", "score": 1' + "0" * 400 + "}\n",
    ),
}


def cases() -> list[tuple[str, list[str], str | None]]:
    """(label, arguments, hostile path kind or None)."""
    found = [(label, args, None) for label, args in _option_cases()]
    for option, (_, args) in PATH_OPTIONS.items():
        for kind in KINDS:
            if not (option == "--output-dir" and kind == "a folder"):
                found.append((f"{option} {kind}", args, kind))
    for command in (
        ["show", "{big}"],
        ["compare", "{big}"],
        ["delete", "{big}", "--yes"],
        ["eval", "{big}", "--tasks", "{sts}"],
        ["export", "{big}", "--csv", "-"],
        ["run", "--resume", "{big}"],
        ["runs", "--limit", "-1"],
        ["leaderboard", "--limit", "-1"],
        ["compare", "--last", "-1"],
    ):
        found.append((" ".join(command), [*command, "--db", "{existing_db}"], None))
    found.append(("HARNESS_STALE_AFTER=abc", ["runs", "--db", "{existing_db}", "ENV:HARNESS_STALE_AFTER=abc"], None))
    found.append(
        ("corrupted database", ["run", "--method", "untrained-mean", "--tasks", "{sts}", "--db", "{corrupt_db}"], None)
    )
    for label in FILE_TEXT:
        found.append((label, ["run", "--method", "untrained-mean", "--tasks", f"{{file:{label}}}"], None))
    return found


def _prepare(folder: Path, source: Path, python: str) -> dict[str, str]:
    (folder / "sts.tsv").write_text(STS)
    (folder / "train.jsonl").write_text(TRAIN)
    subprocess.run(
        [python, "-c", "from leaderboard.store import open_store; open_store('existing.db').close()"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(source)},
        check=True,
        capture_output=True,
    )
    data = bytearray((folder / "existing.db").read_bytes())
    data[4096:8192] = os.urandom(4096)
    (folder / "corrupt.db").write_bytes(bytes(data))
    return {
        "{sts}": str(folder / "sts.tsv"),
        "{train}": str(folder / "train.jsonl"),
        "{existing_db}": str(folder / "existing.db"),
        "{corrupt_db}": str(folder / "corrupt.db"),
        "{big}": str(2**63),
    }


def _snapshot(folder: Path) -> dict[str, int]:
    found = {}
    for path in folder.rglob("*"):
        if not path.is_symlink() and path.is_file():
            found[str(path.relative_to(folder))] = path.stat().st_size
        elif path.is_dir() and not path.is_symlink():
            found[str(path.relative_to(folder)) + "/"] = 0
    return found


def _rows(folder: Path) -> int:
    total = 0
    for db in folder.glob("*.db"):
        if db.is_symlink() or not db.is_file():  # a FIFO case: opening it would block
            continue
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                total += conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        except sqlite3.Error:
            continue
    return total


def probe(source: Path, python: str, timeout: float) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    notes = []
    for label, args, kind in cases():
        folder = Path(tempfile.mkdtemp(prefix="probe-"))
        names = _prepare(folder, source, python)
        if kind is not None:
            names["{path}"] = str(_make_path(folder, kind, _option_name(label)))
        env = {
            **os.environ,
            "PYTHONPATH": str(source),
            "HF_HUB_OFFLINE": "1",
            "HARNESS_CACHE": os.environ.get("HARNESS_CACHE", str(Path.home() / ".cache" / "harness")),
        }
        argv = []
        for arg in args:
            if arg.startswith("ENV:"):
                key, _, value = arg[4:].partition("=")
                env[key] = value
                continue
            if arg.startswith("{file:"):
                name, text = FILE_TEXT[arg[6:-1]]
                (folder / name).write_text(text)
                arg = str(folder / name)
            for key, value in names.items():
                arg = arg.replace(key, value)
            argv.append(arg)
        rows_before = _rows(folder)  # reading may add -wal/-shm files: before the snapshot
        before = _snapshot(folder)
        started = time.time()
        try:
            done = subprocess.run(
                [python, "-m", "harness", *argv], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
            )
            code, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, stderr = (
                "timeout",
                (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or ""),
            )
        after = _snapshot(folder)
        counts["cases"] += 1
        wrong = []
        if "Traceback" in stderr:
            counts["tracebacks"] += 1
            wrong.append("traceback")
        if code != 2:
            counts["wrong exit codes"] += 1
            wrong.append(f"exit {code}")
        new_rows = _rows(folder) - rows_before
        if new_rows:
            counts["rows recorded"] += new_rows
            wrong.append(f"{new_rows} row(s)")
        left = sorted(set(after) - set(before))
        folders = [p for p in left if p.endswith("/")]
        files = [p for p in left if not p.endswith("/")]
        if folders:
            counts["folders left"] += len(folders)
        if files:
            counts["files left"] += len(files)
        if left:
            wrong.append(f"left {', '.join(left)[:80]}")
        if wrong:
            notes.append(f"{label}: {'; '.join(wrong)} ({time.time() - started:.1f} s)")
    return counts, notes


def _option_name(label: str) -> str:
    for option, (name, _) in PATH_OPTIONS.items():
        if label.startswith(option + " "):
            return name
    raise KeyError(label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to probe")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the harness's dependencies")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before a case counts as accepted")
    args = parser.parse_args()
    counts, notes = probe(args.source.resolve(), args.python, args.timeout)
    for note in notes:
        print(note)
    print(json.dumps({"source": str(args.source), **counts}))


if __name__ == "__main__":
    main()
