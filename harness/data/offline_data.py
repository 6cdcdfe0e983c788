"""Real similarity data shipped inside the gensim wheel (read as files; gensim is never imported).

* Lee, Pincombe & Welsh (2005): 50 news documents and 1,225 human-scored pairs (0-1).
* WordSim-353 (0-10) and SimLex-999 (0-10) word pairs.
* ``lee_background.cor``: 300 news documents, disjoint from the Lee evaluation set, for training.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.errors import HarnessError

GENSIM_INSTALL = "pip install 'gensim>=4.3'"


def test_data_dir() -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(f"the offline tasks read gensim's test data, and gensim is not installed: {GENSIM_INSTALL}.")
    folder = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    if not folder.is_dir():
        raise HarnessError(f"gensim is installed without its test data ({folder}); reinstall it: {GENSIM_INSTALL}.")
    return folder


def lee_pairs() -> tuple[list[str], list[str], list[float]]:
    """The 1,225 document pairs (upper triangle) with their mean human similarity."""
    folder = test_data_dir()
    documents = (folder / "lee.cor").read_text(encoding="latin-1").splitlines()
    matrix = [
        [float(v) for v in line.split()]
        for line in (folder / "similarities0-1.txt").read_text().splitlines()
        if line.strip()
    ]
    n = len(documents)
    if n != 50 or len(matrix) != n:
        raise HarnessError(f"{folder}: expected 50 Lee documents and a 50x50 matrix, found {n} and {len(matrix)}.")
    first, second, scores = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            first.append(documents[i].strip())
            second.append(documents[j].strip())
            scores.append(matrix[i][j])
    return first, second, scores


def word_pairs(filename: str) -> tuple[list[str], list[str], list[float]]:
    """Word pairs of ``wordsim353.tsv`` or ``simlex999.txt`` (``#`` lines are comments)."""
    first, second, scores = [], [], []
    for line in (test_data_dir() / filename).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        first.append(a)
        second.append(b)
        scores.append(float(score))
    return first, second, scores
