"""Hostile input through the real CLI, generated: option values, paths of every path option, run
ids and limits, model folders with files missing or damaged, blank items of list options. Each
refused case must end with exit code 2 and one message naming the culprit, no traceback, and leave
nothing behind (no database, no row, no folder, no file). Option checks happen before any model is
loaded, so most cases take milliseconds.

The accepted ranges below are written out here, independently of the option declarations, so a
declaration that drifts (or a check that stops being applied) fails a case.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_run_config
from harness.registry import get_method
from harness.runs.plan import method_options
from tests.conftest import write_sts_tsv

TRIED: Counter[str] = Counter()
ROOT: list[Path] = []  # the module's folder; hypothesis runs each example in a folder of its own below it


@pytest.fixture(scope="module", autouse=True)
def _cases_folder(tmp_path_factory):
    """Every example's folder lives under one that goes when the module ends; the counts of cases
    tried are shown then (pytest -s)."""
    ROOT.append(tmp_path_factory.mktemp("hostile"))
    yield
    print("hostile CLI cases tried:", dict(TRIED), "total", sum(TRIED.values()))
    shutil.rmtree(ROOT.pop(), ignore_errors=True)


FAST = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate],
}
CASES = settings(max_examples=200, **FAST)
runner = CliRunner()
# option cases name a backbone that does not exist: should a bad value slip through the option
# checks, the run stops at the backbone (failing the case on its message) instead of training
NO_BACKBONE = ["--backbone", "/nonexistent/backbone"]


def _int(low: int, high: int = 2**31 - 1) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _float(
    low: float, high: float = math.inf, *, open_low: bool = False, open_high: bool = False
) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or abs(v) > 2**31 - 1 or not math.isfinite(v):
            return False
        return (v > low if open_low else v >= low) and (v < high if open_high else v <= high)

    return ok


# (method, option) -> what it accepts
ACCEPTS: dict[tuple[str, str], Callable[[Any], bool]] = {
    **{
        ("infonce", name): check
        for name, check in {
            "steps": _int(0),
            "epochs": _float(0, open_low=True),
            "batch_size": _int(1),
            "grad_accum": _int(1),
            "lr": _float(0, open_low=True),
            "warmup_ratio": _float(0, 1),
            "weight_decay": _float(0),
            "max_grad_norm": _float(0),
            "lora_r": _int(1),
            "lora_alpha": _float(0, open_low=True),
            "lora_dropout": _float(0, 1, open_high=True),
            "checkpoint_every": _int(0),
            "checkpoint_minutes": _float(0),
            "max_length": _int(8),
            "max_examples": _int(0),
            "temperature": _float(0, open_low=True),
        }.items()
    },
    **{
        ("autoregembed", name): check
        for name, check in {
            "slots": _int(1, 256),
            "beta": _float(0, open_low=True),
            "tau": _float(0, open_low=True),
            "ic_steps": _int(0),
            "cda_steps": _int(0),
            "ic_lr": _float(0),
            "cda_lr": _float(0),
            "ic_epochs": _float(0),
            "ic_grad_accum": _int(0),
            "cda_max_examples": _int(0),
        }.items()
    },
}
INT_OPTIONS = {
    key
    for key in ACCEPTS
    if key[1]
    in {
        "steps",
        "batch_size",
        "grad_accum",
        "lora_r",
        "lora_alpha",
        "checkpoint_every",
        "max_length",
        "max_examples",
        "slots",
        "ic_steps",
        "cda_steps",
        "ic_grad_accum",
        "cda_max_examples",
    }
}
RUN_ACCEPTS = {"seed": _int(0, 2**32 - 1), "eval_batch_size": _int(1, 65536), "max_length": _int(8, 1048576)}

VALUES = st.one_of(
    st.integers(-5, 300),
    st.integers(),
    st.integers(min_value=2**31 - 3, max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 10**400, 0.0, 1.0, 0.999, 1.5, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)


def _literal(value: Any) -> str:
    """A --set value as TOML writes it (nan and inf included)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _refused(args: list[str], culprit: str, folder: Path, *also: str) -> None:
    """``culprit`` (or one of ``also``) must be named in the one message."""
    before = sorted(folder.rglob("*"))
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, (args, result.output)
    assert "Traceback" not in result.output
    assert result.output.count("Error") == 1 and any(c in result.output for c in (culprit, *also)), (
        culprit,
        result.output,
    )
    assert sorted(folder.rglob("*")) == before, "a refused command left files behind"


def _folder() -> Path:
    return Path(tempfile.mkdtemp(dir=ROOT[0]))


@CASES
@given(st.sampled_from(sorted(ACCEPTS)), VALUES)
def test_method_option_values(key, value):
    method, name = key
    TRIED["method option values"] += 1
    seen = value
    valid = ACCEPTS[key](seen) and (key not in INT_OPTIONS or not isinstance(seen, float))
    if valid:  # accepted by the one validator (running it would train a model)
        method_options(get_method(method), {name: seen}, method)
        return
    folder = _folder()
    _refused(
        [
            "run",
            "--method",
            method,
            *NO_BACKBONE,
            "--set",
            f"method_args.{name}={_literal(value)}",
            "--db",
            str(folder / "h.db"),
            "--output-dir",
            str(folder / "runs"),
        ],
        f"method_args.{name}",
        folder,
    )


@CASES
@given(st.sampled_from(sorted(RUN_ACCEPTS)), VALUES)
def test_run_option_values(name, value):
    TRIED["run option values"] += 1
    seen = value
    if RUN_ACCEPTS[name](seen):
        load_run_config(sets=[f"{name}={_literal(value)}"])
        return
    folder = _folder()
    _refused(
        [
            "run",
            "--method",
            "untrained-mean",
            *NO_BACKBONE,
            "--set",
            f"{name}={_literal(value)}",
            "--db",
            str(folder / "h.db"),
        ],
        name,
        folder,
    )


def _template(draw_text: str) -> bool:
    from harness.options import template_problem

    return template_problem(draw_text) is None


@settings(max_examples=60, **FAST)
@given(
    st.sampled_from(["untrained-mean", "prompteol", "infonce"]),
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(
            ["{tex}", "{text}{text}", "", "Q: {text}", "{pool}{text}", "{text}{/pool}{pool}", "{pool}{text}{/pool}"]
        ),
    ),
)
def test_templates(method, template):
    TRIED["templates"] += 1
    if _template(template):
        method_options(get_method(method), {"template": template}, method)
        return
    folder = _folder()
    _refused(
        [
            "run",
            "--method",
            method,
            *NO_BACKBONE,
            "--set",
            f"method_args.template={json.dumps(template)}",
            "--db",
            str(folder / "h.db"),
            "--output-dir",
            str(folder / "runs"),
        ],
        "method_args.template",
        folder,
    )


@settings(max_examples=40, **FAST)
@given(
    st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["meta", "cuda:x", "gpu", "cuda:99999", "CPU", "xla"]))
)
def test_devices(device):
    TRIED["devices"] += 1
    import re

    if re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,4})?", device):
        return
    folder = _folder()
    _refused(
        [
            "run",
            "--method",
            "untrained-mean",
            *NO_BACKBONE,
            "--set",
            f"device={device!r}".replace("'", '"'),
            "--db",
            str(folder / "h.db"),
        ],
        "device",
        folder,
    )


# -- paths ---------------------------------------------------------------------------------------
def _loop(folder: Path, name: str) -> Path:
    (folder / f"a{name}").symlink_to(folder / f"b{name}")
    (folder / f"b{name}").symlink_to(folder / f"a{name}")
    return folder / f"a{name}"


def _fifo(folder: Path, name: str) -> Path:
    os.mkfifo(folder / name)
    return folder / name


def _through_file(folder: Path, name: str) -> Path:
    (folder / "plain").write_text("x")
    return folder / "plain" / name


def _folder_named(folder: Path, name: str) -> Path:
    (folder / name).mkdir()
    return folder / name


PATH_KINDS: dict[str, Callable[[Path, str], Path]] = {
    "symlink loop": _loop,
    "fifo": _fifo,
    "through a file": _through_file,
    "name too long": lambda folder, name: folder / ("n" * 300 + name),
    "unknown user": lambda folder, name: Path(f"~no-such-user-{folder.name}/{name}"),
    "a folder": _folder_named,
    "dangling link": lambda folder, name: (folder / name).symlink_to(folder / "gone") or folder / name,
    "under /proc": lambda folder, name: (
        Path("/proc") / f"harness-{folder.name}" / name
    ),  # permissions say yes, mkdir no
}
# option -> (file name, arguments around the path; RUN = a fast untrained run)
RUN = ["run", "--method", "untrained-mean"]
PATH_OPTIONS: dict[str, tuple[str, Callable[[str, Path], list[str]]]] = {
    "--tasks": ("t.tsv", lambda p, f: [*RUN, "--tasks", p, "--db", str(f / "h.db")]),
    "--train-data": (
        "d.jsonl",
        lambda p, f: [
            "run",
            "--method",
            "infonce",
            "--train-data",
            p,
            "--db",
            str(f / "h.db"),
            "--output-dir",
            str(f / "runs"),
        ],
    ),
    "--config": ("c.toml", lambda p, f: ["run", "--config", p, "--db", str(f / "h.db")]),
    "--db": ("h.db", lambda p, f: [*RUN, "--db", p]),
    "--output-dir": ("runs", lambda p, f: ["run", "--method", "infonce", "--output-dir", p, "--db", str(f / "h.db")]),
    "export --csv": ("r.csv", lambda p, f: ["export", "--csv", p, "--db", str(f / "h.db")]),
    "export --json": ("r.json", lambda p, f: ["export", "--json", p, "--db", str(f / "h.db")]),
    "plot --out": ("l.png", lambda p, f: ["plot", "1", "--out", p, "--db", str(f / "h.db")]),
    "method_args.sharding_config": (
        "s.json",
        lambda p, f: [
            "run",
            "--method",
            "infonce",
            "--set",
            "method_args.finetune=full",
            "--set",
            f"method_args.sharding_config={p!r}".replace("'", '"'),
            "--db",
            str(f / "h.db"),
            "--output-dir",
            str(f / "runs"),
        ],
    ),
}
PATH_OPTIONS["export --mteb"] = ("m", lambda p, f: ["export", "1", "--mteb", p, "--db", str(f / "h.db")])
PATH_OPTIONS["export --model"] = ("e", lambda p, f: ["export", "1", "--model", p, "--db", str(f / "h.db")])
FOLDER_OPTIONS = {"--output-dir", "export --mteb", "export --model"}  # a folder is what they want


@settings(max_examples=140, **FAST)
@given(st.sampled_from(sorted(PATH_OPTIONS)), st.sampled_from(sorted(PATH_KINDS)))
def test_paths(option, kind):
    if option in FOLDER_OPTIONS and kind == "a folder":
        return
    TRIED["paths"] += 1
    folder = _folder()
    if option.startswith(("export", "plot")):  # these read an existing leaderboard
        runner.invoke(app, ["runs", "--db", str(folder / "h.db")])
        from leaderboard.store import open_store

        open_store(folder / "h.db").close()
    name, build = PATH_OPTIONS[option]
    path = PATH_KINDS[kind](folder, name)
    culprit = option.split()[-1]
    _refused(build(str(path), folder), culprit, folder, str(path))


# -- ids and limits --------------------------------------------------------------------------------
ID_COMMANDS = [
    ["show"],
    ["compare"],
    ["delete", "--yes"],
    ["eval", "--tasks", "offline"],
    ["export", "--csv", "-"],
    ["plot"],
]


@settings(max_examples=80, **FAST)
@given(
    st.sampled_from(range(len(ID_COMMANDS) + 1)),
    st.one_of(st.integers(min_value=2**63 - 1, max_value=2**80), st.integers(max_value=0)),
)
def test_run_ids_out_of_range(which, run_id):
    TRIED["run ids"] += 1
    folder = _folder()
    from leaderboard.store import open_store

    open_store(folder / "h.db").close()
    db = ["--db", str(folder / "h.db")]
    if which == len(ID_COMMANDS):
        args = ["run", f"--resume={run_id}", *db]
    else:  # options first, then the id after "--" (so that a negative id is not read as an option)
        args = [*ID_COMMANDS[which], *db, "--", str(run_id)]
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)
    assert f"no run {run_id}" in result.output, result.output


@settings(max_examples=40, **FAST)
@given(
    st.sampled_from([["compare", "--last"], ["runs", "--limit"], ["leaderboard", "--limit"]]),
    st.integers(max_value=-1),
)
def test_negative_limits(command, value):
    TRIED["limits"] += 1
    folder = _folder()
    result = runner.invoke(app, [*command, str(value), "--db", str(folder / "h.db")])
    assert result.exit_code == 2 and command[1] in result.output and "Traceback" not in result.output
    assert list(folder.iterdir()) == []


# -- partial model folders -------------------------------------------------------------------------
DAMAGE: dict[str, Callable[[Path], None]] = {
    "emptied": lambda path: path.write_bytes(b""),
    "cut in half": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path: path.write_bytes(b"\x00\xff{not what it says" * 8),
}


@settings(max_examples=60, **FAST)
@given(st.data())
def test_partial_model_folders(tiny_llama_dir, data):
    """A model folder with some of its files gone or damaged: the run works (what is left suffices)
    or is refused naming the folder, before a row or a file is made."""
    names = sorted(path.name for path in tiny_llama_dir.iterdir())
    dropped = data.draw(st.sets(st.sampled_from(names), max_size=len(names)))
    kept = [name for name in names if name not in dropped]
    damaged = data.draw(st.sampled_from([None, *kept])) if kept else None
    damage = data.draw(st.sampled_from(sorted(DAMAGE))) if damaged else None
    if not dropped and damaged is None:
        return  # the whole model: a plain run
    TRIED["partial model folders"] += 1
    folder = _folder()
    model = folder / "model"
    model.mkdir()
    for name in kept:
        shutil.copy(tiny_llama_dir / name, model / name)
    if damaged is not None:
        DAMAGE[damage](model / damaged)
    task = write_sts_tsv(folder / "sts.tsv", [("a cat sat", "a dog sat", 3.0), ("the sun", "rain falls", 1.0)] * 3)
    args = [*RUN, "--backbone", str(model), "--tasks", str(task), "--db", str(folder / "h.db")]
    before = sorted(folder.rglob("*"))
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 2), (dropped, damaged, damage, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.count("Error:") == 1 and str(model) in " ".join(result.output.split()), result.output
        assert sorted(folder.rglob("*")) == before, "a refused command left files behind"


# -- blank items of list options ------------------------------------------------------------------
BLANKS = st.sampled_from(["", " ", "\t", ",", " , ", ",,", "a,,b", "a, ,b", ",a", "a,"])
LIST_OPTIONS = {"--tasks": "offline", "--dev-tasks": "offline", "--dims": "8", "--seeds": "1", "--plugins": "json"}


@settings(max_examples=60, **FAST)
@given(st.sampled_from(sorted(LIST_OPTIONS)), BLANKS)
def test_blank_items_of_list_options(tiny_llama_dir, option, blank):
    """A blank item in a comma-separated option is refused naming the option, whatever else it
    holds (a real backbone, so that the option is the only culprit)."""
    TRIED["blank list items"] += 1
    folder = _folder()
    good = LIST_OPTIONS[option]
    value = blank.replace("a", good).replace("b", good)
    if not any(not item.strip() for item in value.split(",")):
        return  # nothing blank after all
    extra = ["--tasks", "offline"] if option != "--tasks" else []
    backbone = ["--backbone", str(tiny_llama_dir)]
    _refused([*RUN, *backbone, option, value, *extra, "--db", str(folder / "h.db")], option, folder)
