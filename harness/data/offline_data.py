"""Real similarity data shipped inside the gensim wheel (read as files; gensim is never imported).

* Lee, Pincombe & Welsh (2005): 50 news documents and 1,225 human-scored pairs (0-1).
* WordSim-353 (0-10) and SimLex-999 (0-10) word pairs.
* ``lee_background.cor``: 300 news documents, disjoint from the Lee evaluation set, for training.
* Pang & Lee's sentence polarity (200 movie-review sentences) and ``mini_newsgroup`` (200 posts
  of two newsgroups): a classification and a clustering task.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.labelled_texts import ClassifiedTexts, LabelledTexts
from harness.errors import HarnessError

GENSIM_INSTALL = "pip install 'gensim>=4.3'"


def test_data_dir() -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(
            f"the offline tasks read gensim's test data, and gensim is not installed: {GENSIM_INSTALL}."
        )
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


def polarity_texts() -> ClassifiedTexts:
    """Pang & Lee's 200 movie-review sentences (100 negative, 100 positive): each label's even
    lines train the classifier and its odd lines test it (50 + 50 each)."""
    path = test_data_dir() / "pang_lee_polarity.cor"
    raw = path.read_bytes()
    try:
        rows = [line.split(" ", 1) for line in raw.decode("cp1252").splitlines() if line.strip()]
    except UnicodeDecodeError:
        rows = []
    if len(rows) != 200 or {label for label, _ in rows} != {"__label__neg", "__label__pos"}:
        raise HarnessError(f"{path}: expected 200 sentences labelled __label__neg or __label__pos.")
    seen: dict[str, int] = {}
    parts: dict[bool, tuple[list[str], list[str]]] = {True: ([], []), False: ([], [])}
    for label, text in rows:
        seen[label] = seen.get(label, 0) + 1
        texts, labels = parts[seen[label] % 2 == 1]
        texts.append(text.strip())
        labels.append(label.removeprefix("__label__"))
    (train, train_labels), (test, test_labels) = parts[True], parts[False]
    return ClassifiedTexts(
        "PangLeePolarityClassification", path, hashlib.sha256(raw).hexdigest(), train, train_labels, test, test_labels
    )


class _NewsgroupsUnpickler(pickle.Unpickler):
    """Reads the one pickle gensim ships (a Python 2 scikit-learn ``Bunch`` of texts and numpy
    arrays): only dicts and numpy arrays can be built, so no code in the file can run."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("copy_reg", "_reconstructor"): lambda cls, base, state: dict(state),
            ("__builtin__", "dict"): dict,
            ("sklearn.datasets.base", "Bunch"): dict,
            ("numpy.core.multiarray", "_reconstruct"): np.ndarray((0,)).__reduce__()[0],
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in this file")
        return allowed[(module, name)]


def newsgroup_texts() -> LabelledTexts:
    """gensim's ``mini_newsgroup``: 200 Usenet posts, 100 from alt.atheism and 100 from sci.space,
    each clustered by its subject line, as mteb's TwentyNewsgroupsClustering clusters titles (the
    rest of the header names the group; the bodies are long: ~450 tokens on average)."""
    path = test_data_dir() / "mini_newsgroup"
    raw = path.read_bytes()
    try:
        bunch = _NewsgroupsUnpickler(io.BytesIO(zlib.decompress(raw)), encoding="latin-1").load()
        posts, groups = list(bunch["data"]), [bunch["target_names"][int(i)] for i in bunch["target"]]
    except (
        zlib.error,
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
    ) as exc:
        raise HarnessError(
            f"{path}: not gensim's mini_newsgroup file ({exc}); reinstall gensim: {GENSIM_INSTALL}."
        ) from None
    subjects = [_subject(post) for post in posts]
    kept = [(subject, group) for subject, group in zip(subjects, groups) if subject]
    return LabelledTexts(
        "MiniNewsgroupsClustering", path, hashlib.sha256(raw).hexdigest(), [s for s, _ in kept], [g for _, g in kept]
    )


def _subject(post: str) -> str:
    header = post.split("\n\n", 1)[0]
    line = next((line for line in header.splitlines() if line.startswith("Subject:")), "")
    return line.removeprefix("Subject:").strip()
