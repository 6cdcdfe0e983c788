"""Training triplets (query, positive, hard negative) from files, the hub, or the offline default.

Accepted ``--train-data`` values:

* a triplet file (.jsonl/.csv/.tsv/.txt) with columns query/pos/neg, or the usual aliases
  anchor/positive/negative and sent0/sent1/hard_neg;
* a labelled NLI pair file with premise/hypothesis/label (SICK's sentence_A/sentence_B/
  entailment_judgment and SNLI's sentence1/sentence2/gold_label too): each premise with both an
  entailed and a contradicted hypothesis yields triplets (premise, entailment, contradiction).
  Contradiction is symmetric, so "A contradicts B" also gives B the contradiction A; entailment
  is not, and is used only as labelled. Duplicate pairs count once;
* ``all-nli`` (sentence-transformers/all-nli, triplet subset) or ``simcse-nli`` (the SimCSE
  SNLI+MNLI triplets the paper uses) from the hub, for users who have one;
* ``offline`` (the default here): triplets from gensim's ``lee_background.cor``, 300 news
  articles disjoint from the Lee evaluation documents. Each article is split into sentences; the
  query is a sentence, the positive the next sentence of the same article, the negative a sentence
  drawn (seeded) from a different article.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from harness import hub, offline_data
from harness.errors import HarnessError
from harness.records import cell, fail, read_rows, text_cell

KIND = "training-data file"
SUFFIXES = (".jsonl", ".csv", ".tsv", ".txt")
TRIPLET_ALIASES = {
    "query": ("query", "anchor", "sent0"),
    "pos": ("pos", "positive", "sent1"),
    "neg": ("neg", "negative", "hard_neg"),
}
NLI_ALIASES = {
    "premise": ("premise", "sentence_a", "sentence1"),
    "hypothesis": ("hypothesis", "sentence_b", "sentence2"),
    "label": ("label", "entailment_judgment", "gold_label"),
}
ENTAILMENT = {"entailment", "0"}
CONTRADICTION = {"contradiction", "2"}
HUB_SETS = {
    "all-nli": ("sentence-transformers/all-nli", {"name": "triplet", "split": "train"}),
    "simcse-nli": (
        "princeton-nlp/datasets-for-simcse",
        {"data_files": "nli_for_simcse.csv", "split": "train"},
    ),
}


@dataclass(frozen=True)
class Triplet:
    query: str
    pos: str
    neg: str


def _resolve_columns(columns: set[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, str] | None:
    found = {role: next((a for a in names if a in columns), None) for role, names in aliases.items()}
    return found if all(found.values()) else None  # type: ignore[return-value]


def _describe_expected() -> str:
    triplet = " / ".join("|".join(a) for a in TRIPLET_ALIASES.values())
    nli = " / ".join("|".join(a) for a in NLI_ALIASES.values())
    return f"expected triplet columns {triplet}, or NLI columns {nli}"


def read_triplet_file(path: Path) -> list[Triplet]:
    table = read_rows(path, SUFFIXES, KIND)
    if not table.rows:
        raise fail(path, "", "no data rows.", KIND)
    columns = set(table.columns) if table.columns is not None else set(table.rows[0][1])
    triplet_cols = _resolve_columns(columns, TRIPLET_ALIASES)
    if triplet_cols:
        return [
            Triplet(*(text_cell(path, line, row, triplet_cols[r], KIND) for r in ("query", "pos", "neg")))
            for line, row in table.rows
        ]
    nli_cols = _resolve_columns(columns, NLI_ALIASES)
    if nli_cols:
        return _nli_triplets(path, table.rows, nli_cols)
    where = ", line 1" if table.columns is not None else f", line {table.rows[0][0]}"
    raise fail(path, where, f"{_describe_expected()} (found: {', '.join(sorted(columns))}).", KIND)


def _nli_triplets(path: Path, rows: list, cols: dict[str, str]) -> list[Triplet]:
    entailed: dict[str, dict[str, None]] = {}  # dicts as ordered sets: deterministic order
    contradicted: dict[str, dict[str, None]] = {}
    for line, row in rows:
        premise = text_cell(path, line, row, cols["premise"], KIND).strip()
        hypothesis = text_cell(path, line, row, cols["hypothesis"], KIND).strip()
        label = str(cell(path, line, row, cols["label"], KIND)).strip().lower()
        if label in ENTAILMENT:
            entailed.setdefault(premise, {})[hypothesis] = None
        elif label in CONTRADICTION:
            contradicted.setdefault(premise, {})[hypothesis] = None
            contradicted.setdefault(hypothesis, {})[premise] = None
    triplets = [
        Triplet(premise, pos, neg)
        for premise in entailed
        if premise in contradicted
        for pos, neg in product(entailed[premise], contradicted[premise])
    ]
    if not triplets:
        raise fail(path, "", "no premise has both an entailment and a contradiction, so no triplets.", KIND)
    return triplets


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def offline_triplets(seed: int = 0) -> list[Triplet]:
    """Neighbouring sentences of one article as positives, another article's sentence as negative."""
    text = (offline_data.test_data_dir() / "lee_background.cor").read_text(encoding="latin-1")
    articles = [
        [s.strip() for s in _SENTENCE_END.split(line.strip()) if len(s.split()) >= 4]
        for line in text.splitlines()
        if line.strip()
    ]
    articles = [a for a in articles if len(a) >= 2]
    rng = random.Random(seed)
    triplets = []
    for index, sentences in enumerate(articles):
        for first, second in zip(sentences, sentences[1:]):
            other = rng.choice([j for j in range(len(articles)) if j != index]) if len(articles) > 1 else index
            triplets.append(Triplet(first, second, rng.choice(articles[other])))
    return triplets


def _hub_triplets(name: str) -> list[Triplet]:
    from datasets import load_dataset

    repo, kwargs = HUB_SETS[name]
    try:
        data = load_dataset(repo, **kwargs)
    except (ConnectionError, OSError) as exc:
        raise HarnessError(
            f"--train-data {name} loads {repo} from the hub, which failed here: {exc}. Use a local "
            "triplet or NLI file, or 'offline'."
        ) from None
    cols = _resolve_columns(set(data.column_names), TRIPLET_ALIASES)
    if cols is None:
        raise HarnessError(f"--train-data {name}: {repo} has columns {data.column_names}; {_describe_expected()}.")
    return [Triplet(r[cols["query"]], r[cols["pos"]], r[cols["neg"]]) for r in data]


def require_hub_data(repo: str, what: str) -> None:
    """Refuse at once, with one line, hub data the hub cannot deliver (offline mode is left to
    ``datasets``, which then reads its cache without asking the network)."""
    if hub.offline():
        return
    problem = hub.problem(repo, "dataset")
    if problem is not None:
        raise HarnessError(
            f"{what} loads {repo} from the hub, and {problem}. Use a local file, or set "
            "HF_HUB_OFFLINE=1 to read a cached copy."
        )


def check_source(source: str, seed: int = 0) -> None:
    """Read ``--train-data`` once before a run is recorded, so a missing or malformed file (or
    an unusable hub set) is bad input, not a failed run."""
    if source in HUB_SETS:
        require_hub_data(HUB_SETS[source][0], f"--train-data {source}")
    load_triplets(source, seed)


def load_triplets(source: str, seed: int = 0) -> list[Triplet]:
    """Triplets named by ``--train-data`` (see the module docstring)."""
    if source == "offline":
        return offline_triplets(seed)
    if source in HUB_SETS:
        return _hub_triplets(source)
    path = Path(source).expanduser()
    if not path.exists() and path.suffix.lower() not in SUFFIXES:
        known = ", ".join(["offline", *HUB_SETS])
        raise HarnessError(f"--train-data {source!r}: no such file, and not one of {known}.")
    return read_triplet_file(path)
