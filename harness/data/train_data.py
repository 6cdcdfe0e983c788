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
  drawn (seeded) from a different article;
* several of these joined with ``+`` (their triplets one after the other);
* ``random-negatives:SOURCE[+SOURCE...]`` or ``mined-negatives:SOURCE[+...]``: positive pairs only,
  each given a new negative. Pairs come from triplet files and sets (query, positive), NLI files
  (entailment pairs) and STS files with sentence1/sentence2/score (pairs scoring at least
  ``MIN_STS_SCORE``). The negative is a text of another pair: drawn at random (seeded), or mined
  as the one sharing the most words with the query (Jaccard over lower-cased word sets, words in
  more than 5% of the texts ignored). Unlike SICK's contradictions, which carry a negation word
  92% of the time, such negatives offer no sentence-independent shortcut. Negatives mined by an
  encoder (with false-negative margins) come from ``harness mine SOURCES --miner ...``
  (:mod:`harness.runs.mining`), which writes them to a triplet file to train on.

A trained run records the sha256 of every file it reads (``train_data_resolved``), so two runs
trained on files name the same data only if they read the same bytes (hub sets and ``offline``
are named, not hashed).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from harness import hub, paths
from harness.data import offline_data
from harness.data.records import cell, fail, read_rows, text_cell
from harness.data.task_files import read_sts_file
from harness.errors import HarnessError

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
    "simcse-nli": ("princeton-nlp/datasets-for-simcse", {"data_files": "nli_for_simcse.csv", "split": "train"}),
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


NEGATIVE_MODES = ("random", "mined")
MIN_STS_SCORE = 4.0  # an STS pair at least this similar (0-5 or 1-5 scales) counts as a positive
STS_COLUMNS = ("sentence1", "sentence2", "score")


def parse_source(source: str) -> tuple[str | None, list[str]]:
    """(negatives mode or None, the sources joined by ``+``); an existing path is never split."""
    mode, sep, rest = source.partition("-negatives:")
    if sep and mode in NEGATIVE_MODES:
        return mode, _split(rest)
    if sep:
        raise HarnessError(
            f"--train-data {source!r}: unknown negatives {mode!r}; use {' or '.join(m + '-negatives:' for m in NEGATIVE_MODES)}."
        )
    return None, _split(source)


def _present(source: str) -> bool:
    """Something is at ``source`` (a loop, an over-long name or ``~nobody`` is one message)."""
    return paths.status(paths.expand(source, "--train-data"), "--train-data") is not None


def _split(sources: str) -> list[str]:
    try:
        whole = _present(sources)
    except HarnessError:  # not one path (e.g. too long as one name): its parts are checked one by one
        whole = False
    parts = [sources] if whole else sources.split("+")
    if not all(p.strip() for p in parts):
        raise HarnessError(f"--train-data {sources!r}: an empty source between '+' signs.")
    return parts


def read_pairs(source: str, seed: int = 0) -> list[tuple[str, str]]:
    """Positive pairs of one source: (query, positive) of triplets, entailment pairs of an NLI
    file, or the pairs of an STS file scoring at least ``MIN_STS_SCORE``."""
    path = paths.expand(source, "--train-data")
    if source == "offline" or source in HUB_SETS or not _present(source):
        return [(t.query, t.pos) for t in _single(source, seed)]
    table = read_rows(path, SUFFIXES, KIND)
    columns = set(table.columns) if table.columns is not None else set(table.rows[0][1]) if table.rows else set()
    if all(c in columns for c in STS_COLUMNS):
        pairs = read_sts_file(path)
        chosen = [(a, b) for a, b, s in zip(pairs.sentence1, pairs.sentence2, pairs.scores) if s >= MIN_STS_SCORE]
        if not chosen:
            raise fail(path, "", f"no pair scores {MIN_STS_SCORE} or more, so it gives no positives.", KIND)
        return chosen
    nli = _resolve_columns(columns, NLI_ALIASES)
    if nli is not None:
        return [
            (
                text_cell(path, line, row, nli["premise"], KIND).strip(),
                text_cell(path, line, row, nli["hypothesis"], KIND).strip(),
            )
            for line, row in table.rows
            if str(cell(path, line, row, nli["label"], KIND)).strip().lower() in ENTAILMENT
        ]
    return [(t.query, t.pos) for t in read_triplet_file(path)]


def distinct_pairs(pairs: Sequence[tuple[str, str]], mode: str) -> list[tuple[str, str]]:
    """The pairs stripped, in order, without duplicates or a text paired with itself; at least 2."""
    kept = list(dict.fromkeys((a.strip(), b.strip()) for a, b in pairs if a.strip() != b.strip()))
    if len(kept) < 2:
        raise HarnessError(f"{mode}-negatives need at least 2 distinct positive pairs; found {len(kept)}.")
    return kept


def partners_of(pairs: Sequence[tuple[str, str]]) -> dict[str, set[str]]:
    """Each text with itself and every text it is paired with, either way: never its negative."""
    partners: dict[str, set[str]] = {}
    for a, b in pairs:
        partners.setdefault(a, {a}).add(b)
        partners.setdefault(b, {b}).add(a)
    return partners


def with_new_negatives(pairs: list[tuple[str, str]], mode: str, seed: int) -> list[Triplet]:
    """Triplets from positive pairs (duplicates dropped), each negative a text of another pair:
    ``random`` (seeded) or ``mined`` (most words shared with the query; ties by order)."""
    pairs = distinct_pairs(pairs, mode)
    texts = list(dict.fromkeys(t for pair in pairs for t in pair))
    partners = partners_of(pairs)
    if mode == "random":
        rng = random.Random(seed)
        negatives = []
        for a, _ in pairs:
            negative = rng.choice(texts)
            while negative in partners[a]:
                negative = rng.choice(texts)
            negatives.append(negative)
    else:
        negatives = _mined(pairs, texts, partners)
    return [Triplet(a, b, n) for (a, b), n in zip(pairs, negatives)]


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _mined(pairs: list[tuple[str, str]], texts: list[str], partners: dict[str, set[str]]) -> list[str]:
    """For each query, the other text with the highest word-set Jaccard similarity."""
    words = [_words(t) for t in texts]
    frequency: dict[str, int] = {}
    for ws in words:
        for w in ws:
            frequency[w] = frequency.get(w, 0) + 1
    common = {w for w, n in frequency.items() if n > 0.05 * len(texts)}
    postings: dict[str, list[int]] = {}
    for i, ws in enumerate(words):
        for w in ws - common:
            postings.setdefault(w, []).append(i)
    index = {t: i for i, t in enumerate(texts)}
    chosen = []
    for a, _ in pairs:
        mine = words[index[a]]
        candidates = {j for w in mine - common for j in postings.get(w, ())} or set(range(len(texts)))
        best = max(
            (j for j in sorted(candidates) if texts[j] not in partners[a]),
            key=lambda j: len(mine & words[j]) / max(1, len(mine | words[j])),
            default=None,
        )
        if best is None:  # every word-sharing text is a positive: fall back to the first other text
            best = next(j for j in range(len(texts)) if texts[j] not in partners[a])
        chosen.append(texts[best])
    return chosen


def source_files(source: str) -> list[tuple[str, Path]]:
    """The files ``--train-data`` reads (the parts that exist on disk): (part as given, path), in order."""
    parts = parse_source(source)[1]
    return [
        (p, paths.expand(p, "--train-data")) for p in parts if p != "offline" and p not in HUB_SETS and _present(p)
    ]


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
    for part in parse_source(source)[1]:
        if part in HUB_SETS:
            require_hub_data(HUB_SETS[part][0], f"--train-data {part}")
    load_triplets(source, seed)


def load_triplets(source: str, seed: int = 0) -> list[Triplet]:
    """Triplets named by ``--train-data`` (see the module docstring)."""
    mode, parts = parse_source(source)
    if mode is not None:
        return with_new_negatives([pair for part in parts for pair in read_pairs(part, seed)], mode, seed)
    return [t for part in parts for t in _single(part, seed)]


def _single(source: str, seed: int) -> list[Triplet]:
    if source == "offline":
        return offline_triplets(seed)
    if source in HUB_SETS:
        return _hub_triplets(source)
    path = paths.expand(source, "--train-data")
    if not _present(source) and path.suffix.lower() not in SUFFIXES:
        known = ", ".join(["offline", *HUB_SETS])
        raise HarnessError(f"--train-data {source!r}: no such file, and not one of {known}.")
    return read_triplet_file(path)
