"""Hostile inputs, generated: every task file, training file, config file, sharding config file and
--set value either parses or fails with the one clean error (exit code 2), never a traceback."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli import app
from harness.config import load_run_config
from harness.data.task_files import read_sts_file
from harness.data.train_data import load_triplets
from harness.errors import HarnessError

TRIED: Counter[str] = Counter()
ROOT: list[Path] = []  # the module's folder; hypothesis runs each example in a folder of its own below it


@pytest.fixture(scope="module", autouse=True)
def _cases_folder(tmp_path_factory):
    """Every example's folder lives under one that goes when the module ends; the counts of cases
    tried are shown then (pytest -s)."""
    ROOT.append(tmp_path_factory.mktemp("hostile"))
    yield
    print("hostile inputs tried:", dict(TRIED), "total", sum(TRIED.values()))
    shutil.rmtree(ROOT.pop(), ignore_errors=True)


RUNS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# cells that break naive parsers: delimiters, quotes, newlines, BOMs, NULs, numbers in odd forms
NASTY = st.sampled_from(
    [
        "\t",
        ",",
        '"',
        "'",
        "\n",
        "\r\n",
        "\r",
        "\ufeff",
        "\x00",
        "nan",
        "inf",
        "-0",
        "1e309",
        "５",
        "",
        " ",
        "\\",
        "{",
        "[",
        "=",
        "#",
    ]
)
CELL = st.one_of(
    st.text(max_size=12),
    NASTY,
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers().map(str),
    st.text(min_size=2000, max_size=5000),
)
HEADERS = st.sampled_from(
    [
        ["sentence1", "sentence2", "score"],
        ["score", "sentence2", "sentence1", "extra"],
        ["sentence1", "score"],
        ["query", "pos", "neg"],
        ["anchor", "positive", "negative"],
        ["premise", "hypothesis", "label"],
        ["sentence_A", "sentence_B", "entailment_judgment"],
        [],
    ]
)


@st.composite
def table_bytes(draw, delimiter: str) -> bytes:
    header = draw(HEADERS)
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=6), max_size=8))  # ragged on purpose
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join([delimiter.join(header)] + [delimiter.join(r) for r in rows])
    if draw(st.booleans()):
        text = "\ufeff" + text
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=64))  # trailing garbage, possibly invalid UTF-8
    return data


WORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='\t,"\r\n'),
    min_size=1,
    max_size=15,
).filter(str.strip)


@st.composite
def nearly_valid_bytes(draw, delimiter: str) -> bytes:
    """Well-formed rows with one hostile cell here and there: reaches the deeper checks."""
    header = draw(
        st.sampled_from(
            [["sentence1", "sentence2", "score"], ["query", "pos", "neg"], ["premise", "hypothesis", "label"]]
        )
    )
    rows = []
    for _ in range(draw(st.integers(2, 6))):
        row = [
            draw(WORDS),
            draw(WORDS),
            draw(
                st.one_of(
                    st.floats(0, 5).map(str),
                    CELL,
                    st.sampled_from(["entailment", "contradiction", "neutral", "2", "0"]),
                )
            ),
        ]
        if draw(st.integers(0, 4)) == 0:
            row[draw(st.integers(0, 2))] = draw(CELL)
        rows.append(row)
    return "\n".join(delimiter.join(r) for r in [header, *rows]).encode("utf-8", errors="surrogatepass")


@st.composite
def jsonl_bytes(draw) -> bytes:
    import json

    keys = st.sampled_from(
        ["sentence1", "sentence2", "score", "query", "pos", "neg", "premise", "hypothesis", "label"]
    )
    values = st.one_of(CELL, st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=2))
    lines = draw(
        st.lists(
            st.one_of(st.dictionaries(keys, values, max_size=5).map(json.dumps), st.text(max_size=30)), max_size=6
        )
    )
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


ANY_FILE = st.one_of(
    st.tuples(st.just(".tsv"), nearly_valid_bytes("\t")),
    st.tuples(st.just(".csv"), nearly_valid_bytes(",")),
    st.tuples(st.just(".tsv"), table_bytes("\t")),
    st.tuples(st.just(".csv"), table_bytes(",")),
    st.tuples(st.just(".txt"), table_bytes("\t")),
    st.tuples(st.just(".jsonl"), jsonl_bytes()),
    st.tuples(st.sampled_from([".tsv", ".csv", ".jsonl"]), st.binary(max_size=300)),
)


def _write(suffix: str, data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(dir=ROOT[0]))
    path = folder / f"hostile{suffix}"
    path.write_bytes(data)
    return path


@RUNS
@given(ANY_FILE)
def test_task_files(case):
    suffix, data = case
    TRIED["task files"] += 1
    try:
        pairs = read_sts_file(_write(suffix if suffix != ".txt" else ".tsv", data))
    except HarnessError as exc:
        assert "task file" in str(exc)
        return
    assert len(pairs.sentence1) == len(pairs.sentence2) == len(pairs.scores) >= 2


@RUNS
@given(ANY_FILE)
def test_training_files(case):
    suffix, data = case
    TRIED["training files"] += 1
    try:
        triplets = load_triplets(str(_write(suffix, data)))
    except HarnessError as exc:
        assert "training-data file" in str(exc)
        return
    assert triplets and all(isinstance(t.query, str) and t.query.strip() for t in triplets)


TOML_PIECES = st.sampled_from(
    [
        'method = "untrained-mean"',
        "eval_batch_size = 8",
        "eval_batch_size = -1",
        'eval_batch_size = "8"',
        "seed = true",
        "tasks = []",
        'tasks = ["offline", 3]',
        "max_length = 1e9",
        'dtype = "float8"',
        "[method_args]",
        'template = "{text}"',
        "unknown = 1",
        "= broken",
        '"""',
        "[[tasks]]",
        "x = {a = 1}",
        "\x00",
        "\ufeff",
    ]
)


@RUNS
@given(st.lists(st.one_of(TOML_PIECES, st.text(max_size=20)), max_size=8), st.binary(max_size=16))
def test_config_files(lines, tail):
    TRIED["config files"] += 1
    path = _write(".toml", "\n".join(lines).encode("utf-8", errors="surrogatepass") + tail)
    try:
        load_run_config(path)
    except HarnessError as exc:
        assert f"--config {path}" in str(exc) or "must be" in str(exc)


@RUNS
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.builds(
                lambda k, v: f"{k}={v}",
                st.sampled_from(["batch_size", "seed", "tasks", "dtype", "method_args.x", "method_args", "a.b.c", ""]),
                st.text(max_size=20),
            ),
        ),
        max_size=4,
    )
)
def test_set_values(items):
    TRIED["--set values"] += 1
    try:
        load_run_config(sets=items)
    except HarnessError as exc:
        assert "--set" in str(exc) or "must be" in str(exc)


SHARDING_KEYS = st.sampled_from(
    [
        "fsdp_version",
        "fsdp_reshard_after_forward",
        "sharding_strategy",
        "fsdp_offload_params",
        "fsdp_config",
        "transformer_layer_cls_to_wrap",
        "mixed_precision",
        "fsdp_state_dict_type",
        "zero_optimization",
        "bf16",
        "fp16",
        "optimizer",
        "params",
        "scheduler",
        "train_micro_batch_size_per_gpu",
        "gradient_clipping",
        "stage",
        "reduce_bucket_size",
        "enabled",
        "lr",
        "bogus",
    ]
)
SHARDING_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 40),
        st.floats(),
        st.sampled_from(["auto", "2", "bf16", "FULL_SHARD", "NO_SHARD", ""]),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(SHARDING_KEYS, st.integers()), inner, max_size=4)
    ),
    max_leaves=12,
)


@RUNS
@given(
    st.sampled_from(["fsdp", "deepspeed"]),
    st.sampled_from([".json", ".yaml"]),
    st.one_of(st.dictionaries(SHARDING_KEYS, SHARDING_VALUES, max_size=6), SHARDING_VALUES),
    st.binary(max_size=8),
)
def test_sharding_config_files(engine, suffix, content, tail):
    import json as json_module

    import yaml

    from harness.training.sharding import choose_engine, deepspeed_config
    from methods.infonce import InfoNCEConfig

    TRIED["sharding config files"] += 1
    text = json_module.dumps(content) if suffix == ".json" else yaml.safe_dump(content)
    path = _write(suffix, text.encode() + tail)
    try:
        sharding = choose_engine(engine, str(path))
        if engine == "deepspeed":
            deepspeed_config(sharding.deepspeed, InfoNCEConfig(finetune="full"), 2, 64, False)
    except HarnessError as exc:
        assert str(path) in str(exc) or "DeepSpeed config" in str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_FILE)
def test_task_files_through_the_cli_exit_0_or_2(case):
    suffix, data = case
    TRIED["task files via the CLI"] += 1
    folder = Path(tempfile.mkdtemp(dir=ROOT[0]))
    path = folder / f"hostile{suffix if suffix != '.txt' else '.tsv'}"
    path.write_bytes(data)
    try:
        read_sts_file(path)
        return  # a file that parses would start a real run; the parse-level test covers it
    except HarnessError:
        pass
    result = CliRunner().invoke(
        app, ["run", "--method", "untrained-mean", "--tasks", str(path), "--db", str(folder / "h.db")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (folder / "h.db").exists()
