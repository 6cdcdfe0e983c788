"""Training data of the ``texts`` kind: plain texts, for stages that need no pairs (LLM2Vec's masked
next-token prediction, unsupervised SimCSE).

Accepted ``--train-data`` values for such stages:

* a plain text file (``.txt``): one text a line, blank lines skipped;
* a ``.jsonl``, ``.csv`` or ``.tsv`` file with a ``text`` column;
* any source of triplets (:mod:`harness.data.train_data`: triplet and NLI files, ``offline``, the
  hub's ``all-nli`` and ``simcse-nli``): its distinct texts, in order. A ``.txt`` file whose first
  line is a tab-separated header naming such columns is read as that table;
* ``wiki1m`` (SimCSE's one million Wikipedia sentences, the data of LLM2Vec's SimCSE stage) and
  ``wikitext-103`` (the data of its MNTP stage) from the hub, for users who have one;
* several of these joined with ``+``.

Every text read is checked (file, line, exit 2) before a run is recorded, and files are hashed with
the run like the other kinds.
"""

from __future__ import annotations

from pathlib import Path

from harness import paths
from harness.data import train_data
from harness.data.records import fail, file_text, read_rows, text_cell
from harness.errors import HarnessError

KIND = "text file"
TEXT_COLUMN = "text"
HUB_TEXTS = {
    "wiki1m": ("princeton-nlp/datasets-for-simcse", {"data_files": "wiki1m_for_simcse.txt", "split": "train"}),
    "wikitext-103": ("Salesforce/wikitext", {"name": "wikitext-103-raw-v1", "split": "train"}),
}
#: the training-data kinds a stage may declare (``Stage.data_kind``)
DATA_KINDS = {
    "triplets": "(query, positive, hard negative) triplets: triplet or NLI files, offline, all-nli, simcse-nli",
    "texts": "plain texts: a .txt file (one a line), a file with a text column, wiki1m, wikitext-103, or any triplet source's texts",
}


def load_texts(source: str, seed: int = 0) -> list[str]:
    """The texts named by ``--train-data`` (see the module docstring)."""
    texts: list[str] = []
    for part in train_data.parse_source(source)[1]:
        texts += _single(part, seed)
    return texts


def check_texts(source: str, seed: int = 0) -> None:
    """Read ``--train-data`` as texts once, before a run is recorded."""
    for part in train_data.parse_source(source)[1]:
        if part in HUB_TEXTS:
            train_data.require_hub_data(HUB_TEXTS[part][0], f"--train-data {part}")
    if not load_texts(source, seed):
        raise HarnessError(f"--train-data {source!r}: no texts.")


def check_data(source: str, seed: int, kinds: set[str]) -> None:
    """Read ``--train-data`` once as each kind the method's stages declare."""
    unknown = sorted(kinds - set(DATA_KINDS))
    if unknown:
        raise HarnessError(
            f"a stage declares data kind(s) {', '.join(unknown)}; the kinds are {', '.join(DATA_KINDS)}."
        )
    checks = {"triplets": train_data.check_source, "texts": check_texts}
    for kind in sorted(kinds):
        try:
            checks[kind](source, seed)
        except HarnessError as exc:
            raise HarnessError(
                f"{str(exc).rstrip('.')}; the method's stages read {kind}: {DATA_KINDS[kind]}."
            ) from None


def _single(source: str, seed: int) -> list[str]:
    if source in HUB_TEXTS:
        return _hub_texts(source)
    path = paths.expand(source, "--train-data")
    if (
        source == "offline"
        or source in train_data.HUB_SETS
        or path.suffix.lower() not in (".txt", ".jsonl", ".csv", ".tsv")
    ):
        return _distinct(
            t for triplet in train_data.load_triplets(source, seed) for t in (triplet.query, triplet.pos, triplet.neg)
        )
    if path.suffix.lower() == ".txt" and not _tabular(path):
        return _lines(path)
    table = read_rows(path, train_data.SUFFIXES, KIND)
    if TEXT_COLUMN in table.names():
        if not table.rows:
            raise fail(path, "", "no data rows.", KIND)
        return [text_cell(path, line, row, TEXT_COLUMN, KIND).strip() for line, row in table.rows]
    return _distinct(
        t for triplet in train_data.read_triplet_file(path) for t in (triplet.query, triplet.pos, triplet.neg)
    )


def _tabular(path: Path) -> bool:
    """Whether a .txt file's first line is a tab-separated header of a table this reader knows."""
    first = file_text(path, KIND).splitlines()[0]
    names = {name.strip().lower() for name in first.split("\t")}
    known = {
        TEXT_COLUMN,
        *(a for aliases in train_data.TRIPLET_ALIASES.values() for a in aliases),
        *(a for aliases in train_data.NLI_ALIASES.values() for a in aliases),
    }
    return "\t" in first and bool(names & known)


def _lines(path: Path) -> list[str]:
    texts = [line.strip() for line in file_text(path, KIND).splitlines() if line.strip()]
    if not texts:
        raise fail(path, "", "no texts (every line is blank).", KIND)
    return texts


def _distinct(texts: object) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))  # type: ignore[attr-defined]


def _hub_texts(name: str) -> list[str]:
    from datasets import load_dataset

    repo, kwargs = HUB_TEXTS[name]
    try:
        data = load_dataset(repo, **kwargs)
    except (ConnectionError, OSError) as exc:
        raise HarnessError(
            f"--train-data {name} loads {repo} from the hub, which failed here: {exc}. Use a local text file."
        ) from None
    return [t.strip() for t in data[TEXT_COLUMN] if t and t.strip()]
