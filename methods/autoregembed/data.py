"""AutoRegEmbed's training rows: IC rows (autoencoded texts, a context/prompt/answer file, or PwC) and CDA triplets."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.data.records import read_rows, text_cell
from harness.data.train_data import load_triplets, require_hub_data
from harness.errors import HarnessError


# -- stages -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ICExample:
    context: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class CDAExample:
    query: str
    pos: str
    neg: str
    ref_pos: float = 0.0  # lp_ref(d+ | E_q), filled in when the stage begins
    ref_neg: float = 0.0  # lp_ref(d- | E_q)


IC_HELD_OUT = 64  # at most this many IC rows are held out for the stage's diagnostics


def split_held_out(rows: Sequence[ICExample], seed: int) -> tuple[list[ICExample], list[ICExample]]:
    """(held out, kept): a seeded tenth of the rows, at most ``IC_HELD_OUT``, none under 20 rows."""

    count = min(IC_HELD_OUT, len(rows) // 10)
    chosen = set(random.Random(seed).sample(range(len(rows)), count)) if count >= 2 else set()
    return [r for i, r in enumerate(rows) if i in chosen], [r for i, r in enumerate(rows) if i not in chosen]


def ic_examples(ic_data: str, train_data: str, seed: int) -> list[ICExample]:
    """IC rows: a context/prompt/answer file, PwC from the hub, or (default) autoencoding: each
    distinct query and positive text of the training triplets is its own answer."""
    if ic_data == "pwc":
        return _pwc()
    if ic_data:
        return ic_file(Path(ic_data))

    texts = dict.fromkeys(text for t in load_triplets(train_data, seed) for text in (t.query, t.pos))
    return [ICExample(text, "", text) for text in texts]


def ic_file(path: Path) -> list[ICExample]:
    kind = "IC data file"
    table = read_rows(path, (".jsonl", ".csv", ".tsv", ".txt"), kind)
    table.require(path, ("context", "answer"), kind)
    return [
        ICExample(
            text_cell(path, line, row, "context", kind),
            str(row.get("prompt") or ""),
            text_cell(path, line, row, "answer", kind),
        )
        for line, row in table.rows
    ]


def _pwc() -> list[ICExample]:
    from datasets import load_dataset

    require_hub_data("sggetao/PwC", "ic_data 'pwc'")
    try:
        data = load_dataset("sggetao/PwC", split="train")
    except (ConnectionError, OSError) as exc:
        raise HarnessError(f"ic_data 'pwc' loads sggetao/PwC from the hub, which failed here: {exc}.") from None
    return unique_contexts(ICExample(r["input"], r["prompt"], r["answer"]) for r in data)


def unique_contexts(rows: Iterable[ICExample]) -> list[ICExample]:
    """The first row of each distinct context, in order. PwC repeats every context under many
    prompts (~241k rows); the paper trains on its 16,382 unique rows, which this rule is meant to
    give (not checked here: the set needs the hub)."""
    seen: dict[str, ICExample] = {}
    for row in rows:
        seen.setdefault(row.context, row)
    return list(seen.values())
