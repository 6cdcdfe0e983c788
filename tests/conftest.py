"""Shared fixtures. No test touches the network: the hub is switched off for the whole session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `harness run` evaluates a method's baseline beside it; tests of other things run the method
# alone (tests/runs/test_baseline.py and the README walk-through unset this)
os.environ["HARNESS_BASELINE"] = "0"

import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT.parent / "shared" / "data"
HARNESS = [sys.executable, "-m", "harness"]  # the CLI in a process of its own


@pytest.fixture(autouse=True)
def own_embedding_cache(tmp_path_factory, monkeypatch):
    """Each test starts with an empty embedding cache of its own (subprocesses inherit it), so no
    test's vectors come from another's run."""
    folder = tmp_path_factory.mktemp("embedding-cache")
    monkeypatch.setenv("HARNESS_EMBEDDING_CACHE", str(folder))
    return folder


WORDS = (
    "the a cat dog sat on mat ran in park bird flew over house car drove down road man woman "
    "ate food drank water read book wrote letter sky is blue green grass sun shines rain falls "
    'this sentence means one word : " quick brown fox jumps lazy'
).split()


def make_tokenizer():
    """A word-level fast tokenizer over ``WORDS``, built in code (no hub)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")


def make_tiny_llama(seed: int = 0, hidden_size: int = 32):
    """A randomly initialised 2-layer Llama, small enough for unit tests (``hidden_size`` wide)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_llama():
    return make_tiny_llama(), make_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """The tiny Llama saved as a local model folder, usable as ``--backbone PATH``."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model, tokenizer = make_tiny_llama(), make_tokenizer()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real STS/NLI data lives beside the project)")
    return SHARED_DATA


def write_sts_tsv(path: Path, rows) -> Path:
    lines = ["sentence1\tsentence2\tscore"] + [f"{a}\t{b}\t{s}" for a, b, s in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_sts_file(tmp_path) -> Path:
    """Twelve pairs over the tiny vocabulary with made-up but varied scores."""
    rows = [
        ("the cat sat on the mat", "a cat sat on a mat", 4.8),
        ("the dog ran in the park", "a dog ran in a park", 4.5),
        ("the bird flew over the house", "a bird flew over a house", 4.6),
        ("the man ate food", "the woman drank water", 1.2),
        ("the sun shines", "rain falls", 0.8),
        ("the sky is blue", "the grass is green", 1.5),
        ("the man read a book", "the woman wrote a letter", 1.9),
        ("the car drove down the road", "a car drove down a road", 4.9),
        ("quick brown fox jumps", "lazy dog sat", 0.5),
        ("the cat ran", "the dog ran", 2.7),
        ("the bird sat on the house", "the cat sat on the mat", 2.2),
        ("the woman ate food", "the man ate food", 3.6),
    ]
    return write_sts_tsv(tmp_path / "tiny-sts.tsv", rows)


def independent_cosine_spearman(model_folder, task_file) -> float:
    """The expected score of mean pooling, computed without the harness: plain transformers, one
    text at a time (no padding), cosine similarity, scipy's Spearman."""
    from scipy.stats import spearmanr

    cosine, gold = independent_cosines(model_folder, task_file)
    return float(spearmanr(cosine, gold)[0])


def independent_cosines(model_folder, task_file):
    """Each pair's cosine of mean-pooled vectors (plain transformers, one text at a time) and its
    gold score, as numpy arrays."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from harness.data.task_files import read_sts_file

    model = AutoModel.from_pretrained(model_folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    pairs = read_sts_file(task_file)

    def embed(text: str) -> np.ndarray:
        with torch.no_grad():
            return model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0).numpy()

    a = np.stack([embed(t) for t in pairs.sentence1])
    b = np.stack([embed(t) for t in pairs.sentence2])
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return cosine, np.asarray(pairs.scores, dtype=float)


@pytest.fixture(scope="session")
def postgres_server():
    from tests.postgres import server

    yield from server()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty PostgreSQL database on the test server, as a --db URL."""
    from tests.postgres import fresh_database

    yield from fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path):
    """A leaderboard location on each back-end: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "h.db")
    return request.getfixturevalue("postgres_url")


def db_rows(db: str, sql: str) -> list[tuple]:
    """Rows of a plain SQL query on either back-end, read without the harness's store."""
    from sqlalchemy import create_engine, text

    from leaderboard.database import locate

    engine = create_engine(locate(db).url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def refused_naming(read: Callable[[Path], object], path: Path, fragments: list[str]) -> None:
    """``read(path)`` fails with one ``HarnessError`` naming ``path`` and holding every fragment."""
    from harness.errors import HarnessError

    with pytest.raises(HarnessError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message


# -- the CLI: runs, their arguments and the rows they leave -------------------------------------


def harness_env(**extra: str) -> dict[str, str]:
    """The environment of a ``HARNESS`` subprocess: this one's, offline, and ``extra``."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", **extra}


def sqlite_rows(db: Path, sql: str) -> list[tuple]:
    """Rows of a plain SQL query on a SQLite file, read without the harness."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def cli_ok(*args: str):
    """``harness ARGS`` through typer's CliRunner, which must succeed."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def run_args(db, backbone, task, *extra: str, method: str = "untrained-mean") -> list[str]:
    """The arguments of ``harness run --method METHOD`` of ``backbone`` on ``task`` into ``db``, then ``extra``."""
    return ["run", "--method", method, "--backbone", str(backbone), "--tasks", str(task), "--db", str(db), *extra]


def run_untrained(db, backbone, task, *extra: str):
    """``harness run --method untrained-mean`` of ``backbone`` on ``task`` into ``db``, which must succeed."""
    return cli_ok(*run_args(db, backbone, task, *extra))


def infonce_run_args(db: Path, backbone: Path, triplets: Path, task: Path, out: Path, *sets: str) -> list[str]:
    """The arguments of a small InfoNCE ``harness run`` (batch 2, a one-line template) into ``db``
    with its folder under ``out``; each of ``sets`` one more ``--set``."""
    return [
        "run",
        "--method",
        "infonce",
        "--backbone",
        str(backbone),
        "--train-data",
        str(triplets),
        "--tasks",
        str(task),
        "--db",
        str(db),
        "--output-dir",
        str(out),
        "--set",
        "method_args.batch_size=2",
        "--set",
        "method_args.template='this sentence : {text}'",
        *(x for s in sets for x in ("--set", s)),
    ]


@pytest.fixture
def triplets(tmp_path) -> Path:
    """The training triplets of tests/training_fixtures.py as a JSON-lines file."""
    from tests.training_fixtures import write_triplets

    return write_triplets(tmp_path / "triplets.jsonl")


def write_board(folder: Path, seeds=(0,)) -> Path:
    """``folder/h.db``: one finished run per seed (method m, backbone b), scored 0.5 + seed / 10 on
    task T (version v1), with a torch version and a CPU count as its environment."""
    from leaderboard.store import open_store

    db = folder / "h.db"
    store = open_store(db)
    for seed in seeds:
        run = store.start_run(
            method="m",
            backbone="b",
            task_spec="t",
            task_names=["T"],
            config={"seed": seed, "x": 1},
            config_hash="h",
            seed=seed,
            environment={"versions": {"torch": "9.9"}, "hardware": {"cpus": 2}},
        )
        store.record_score(
            run, task="T", main_metric="cosine_spearman", main_score=0.5 + seed / 10, details={}, task_version="v1"
        )
        store.finish_run(run)
    store.close()
    return db


@pytest.fixture
def fresh_mteb_catalog(monkeypatch, tmp_path):
    """harness.evaluation.mteb_catalog with its cache under ``tmp_path / "cache"`` and nothing read yet."""
    from harness.evaluation import mteb_catalog as task_catalog

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    task_catalog.catalog.cache_clear()
    return task_catalog
