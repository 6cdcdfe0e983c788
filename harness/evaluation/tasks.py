"""Evaluation tasks: presets, offline tasks from the gensim wheel, and the user's task files.

``--tasks`` items are resolved here without importing mteb when possible: a preset name, a task
file (``.tsv``/``.csv``/``.jsonl``) or BEIR folder, or any mteb task name (checked against mteb's
task list). Local data becomes a task of mteb's own type at evaluation time
(:mod:`harness.evaluation.local_tasks`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data import offline_data
from harness.data.local_data import LocalData
from harness.data.task_files import SUFFIXES, read_task_file
from harness.errors import HarnessError
from harness.evaluation.local_tasks import REVISION_DIGITS, About, file_task, local_task, sts_task
from harness.evaluation.mteb_catalog import catalog
from harness.paths import expand
from harness.registry import IMPORTED_PLUGINS

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


@dataclass(frozen=True)
class OfflineTask:
    """A task read from gensim's test data: STS pairs with their score range, or labelled data."""

    description: str
    reference: str
    loader: Callable[[], Any]  # STS: (sentence1, sentence2, scores); else a LocalData
    min_score: float | None = None
    max_score: float | None = None


OFFLINE_TASKS: dict[str, OfflineTask] = {
    "LeeDocSimilarity": OfflineTask(
        "Lee, Pincombe & Welsh (2005): 1,225 pairs of 50 Australian news documents, human "
        "similarity 0-1 (from gensim's test data).",
        "https://aclanthology.org/U05-1017/",
        offline_data.lee_pairs,
        0.0,
        1.0,
    ),
    "WordSim353": OfflineTask(
        "WordSim-353: 353 English word pairs, human relatedness 0-10 (from gensim's test data).",
        "https://gabrilovich.com/resources/data/wordsim353/wordsim353.html",
        lambda: offline_data.word_pairs("wordsim353.tsv"),
        0.0,
        10.0,
    ),
    "SimLex999": OfflineTask(
        "SimLex-999: 999 English word pairs, human similarity 0-10 (from gensim's test data).",
        "https://fh295.github.io/simlex.html",
        lambda: offline_data.word_pairs("simlex999.txt"),
        0.0,
        10.0,
    ),
    "PangLeePolarityClassification": OfflineTask(
        "Pang & Lee (2005) sentence polarity: 200 movie-review sentences, negative or positive, "
        "100 training and 100 test (50 of each label in each; from gensim's test data).",
        "https://www.cs.cornell.edu/people/pabo/movie-review-data/",
        offline_data.polarity_texts,
    ),
    "MiniNewsgroupsClustering": OfflineTask(
        "20 Newsgroups, gensim's sample: the subject lines of 200 posts of alt.atheism and sci.space "
        "(100 each), clustered into the two groups (as mteb's TwentyNewsgroupsClustering clusters titles).",
        "http://qwone.com/~jason/20Newsgroups/",
        offline_data.newsgroup_texts,
    ),
}


@dataclass(frozen=True)
class TaskSpec:
    """A resolved task: ``kind`` is ``offline``, ``file`` (a task file or folder) or ``mteb``."""

    name: str
    kind: str
    subsets: tuple[str, ...] | None = None
    data: LocalData | None = None  # a task file's or folder's data
    protocol: str | None = None  # a reranking file's: which queries are scored (RERANK_PROTOCOLS)
    left_out: int = 0  # queries that protocol leaves out
    split: str | None = (
        None  # an mteb task's evaluated split (``NAME:split``), a task file's label (``FILE:dev``); None: none given
    )

    def record(self) -> dict[str, Any]:
        """What goes into the recorded config: enough to tell two task versions apart (an STS
        file's entry is as it was before other kinds existed, so its runs' hashes stay)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.subsets:
            out["subsets"] = list(self.subsets)
        if self.data is not None:
            out.update(path=str(self.data.path), sha256=self.data.digest)
            if self.data.kind == "STS":
                out["pairs"] = self.data.size
            else:
                out.update(type=self.data.kind, items=self.data.size)
        if self.protocol not in (
            None,
            "all",
        ):  # "all" (mteb's) is how every reranking file was scored before protocols
            out.update(protocol=self.protocol, left_out=self.left_out)
        if self.split is not None:
            out["split"] = self.split
        return out


def _mteb(name: str, *subsets: str) -> TaskSpec:
    return TaskSpec(name, "mteb", subsets or None)


_STS7 = [_mteb(n) for n in ("SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark")]
_STS10_EXTRA = [_mteb("BIOSSES"), _mteb("STS17", "en-en"), _mteb("STS22", "en")]
_RETRIEVAL = [_mteb(n) for n in ("ArguAna", "CQADupstackRetrieval", "FiQA2018", "NFCorpus", "SCIDOCS", "SciFact")]
PRESETS: dict[str, tuple[str, list[TaskSpec]]] = {
    "offline": (
        "the default here: Lee documents, WordSim-353, SimLex-999 (STS), Pang & Lee polarity "
        "(classification), two newsgroups (clustering); no hub needed",
        [TaskSpec(name, "offline") for name in OFFLINE_TASKS],
    ),
    "sts7": ("the paper's Avg(7): SICK-R, STS12-16, STS-B (test splits; needs the hub)", _STS7),
    "sts10": (
        "the paper's Avg(10): sts7 + BIOSSES, STS17 en-en, STS22 en (needs the hub)",
        [_STS10_EXTRA[0], *_STS7, *_STS10_EXTRA[1:]],
    ),
    "paper-retrieval": (
        "the retrieval tasks of AutoRegEmbed's evaluation code: ArguAna, CQADupstack (its 12 subsets "
        "averaged as one score, mteb's CQADupstackRetrieval), FiQA2018, NFCorpus, SCIDOCS, SciFact (needs the hub)",
        _RETRIEVAL,
    ),
    "paper": ("sts10 + paper-retrieval (needs the hub)", [_STS10_EXTRA[0], *_STS7, *_STS10_EXTRA[1:], *_RETRIEVAL]),
}


LOCAL_KINDS = {
    "STS pairs": "a .tsv, .csv or .jsonl file with sentence1, sentence2 and score (any range); "
    "evaluated as an mteb STS task (cosine Spearman). Its name is the file's stem.",
    "pair classification": "a file with sentence1, sentence2 and a 0/1 label (or MSRP's Quality, #1 String, "
    "#2 String); an mteb PairClassification task (max AP over similarity thresholds).",
    "reranking": "a file with query, document and a 0/1 label, one row per candidate (or TREC QA's qtext, "
    "atext, label; or JSONL query, positive, negative lists); an mteb Reranking task (MAP).",
    "retrieval": "a BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv; an mteb Retrieval task "
    "(nDCG@10). Its name is the folder's. docs/tasks.md has every format.",
    "clustering": "a file with text and label (a class name or number); an mteb Clustering task (V-measure).",
    "classification": "a file with text, label and split (train or test), or a folder of train and test "
    "files with text and label; an mteb Classification task (accuracy of a logistic regression).",
}


#: the split labels a task file takes (``FILE:dev``): recorded, never read from the file
FILE_SPLITS = ("train", "validation", "val", "dev", "trial", "test")


def file_split(item: str) -> tuple[str, str | None]:
    """A task file item as its path and split label: ``data/sts.tsv:dev`` is ``data/sts.tsv``
    labelled ``dev``; a path that exists as given (or has no known label after its last colon)
    has none."""
    head, colon, label = item.rpartition(":")
    if colon and label.lower() in FILE_SPLITS and head and not Path(item).exists():
        return head, label.lower()
    return item, None


def _looks_like_file(item: str) -> bool:
    if item.lower().endswith(SUFFIXES) or "/" in item or "\\" in item or item.startswith("~"):
        return True
    try:
        return Path(item).exists()
    except OSError:  # e.g. a name too long for the OS: read_rows says so
        return True


def _mteb_task_exists(name: str) -> bool:
    """Whether mteb takes ``name``: from its task list (fast), else, where a plug-in may have
    registered tasks of its own, from mteb itself."""
    if name in catalog().accepted:
        return True
    if not IMPORTED_PLUGINS:
        return False
    import mteb

    try:
        mteb.get_task(name)
    except (KeyError, ValueError):
        return False
    return True


def unknown_task(name: str, option: str = "--tasks") -> HarnessError:
    """An unknown ``--tasks`` (or ``option``) item, with the closest presets and mteb task names."""
    known = [*PRESETS, *OFFLINE_TASKS, *sorted(catalog().accepted)]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:  # a wrong case or a fragment: STSB, stsbenchmark
        close = [k for k in known if name.lower() in k.lower() or k.lower() == name.lower()][:3]
    suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return HarnessError(
        f"{option}: unknown task {name!r}.{suggestion} A task is a preset ({', '.join(PRESETS)}), one of its offline tasks, a task file "
        f"({', '.join(SUFFIXES)}) or an mteb task name; `harness tasks --search WORD` lists them."
    )


#: which queries of a reranking file are scored (``rerank_protocol``; see ``Rerankings.scored_by``)
RERANK_PROTOCOLS = ("answered", "clean", "all")


def resolve_tasks(items: Sequence[str], option: str = "--tasks", rerank_protocol: str = "answered") -> list[TaskSpec]:
    """Expand presets, read task files and check mteb names; duplicates are kept once; a reranking
    file keeps the queries ``rerank_protocol`` scores. Messages name ``option`` (``--tasks``,
    ``--dev-tasks``)."""
    if not items:
        raise HarnessError(f"{option}: no tasks given.")
    resolved: dict[str, TaskSpec] = {}
    for position, item in enumerate(items, start=1):
        if not item.strip():
            raise HarnessError(
                f"{option} item {position} is blank ({item!r}); give a preset, an mteb task name or a task file."
            )
        if item in PRESETS:
            specs = PRESETS[item][1]
        elif item in OFFLINE_TASKS:  # one task of the offline preset, e.g. to add it to an older run
            specs = [TaskSpec(item, "offline")]
        elif _looks_like_file(item):
            path, split = file_split(item)
            data = read_task_file(expand(path, "task file"))
            specs = [TaskSpec(data.name, "file", data=data, split=split)]
            if data.kind == "Reranking":
                scored, left_out = data.scored_by(rerank_protocol)  # type: ignore[attr-defined]
                specs = [
                    TaskSpec(data.name, "file", data=scored, protocol=rerank_protocol, left_out=left_out, split=split)
                ]
        elif _mteb_task_exists(item):
            specs = [TaskSpec(item, "mteb")]
        elif ":" in item and _mteb_task_exists(
            item.rpartition(":")[0]
        ):  # NAME:split, as lm-evaluation-harness names them
            name, _, split = item.rpartition(":")
            if not split.strip():
                raise HarnessError(f"{option} {item!r}: name the split after the colon, e.g. {name}:validation.")
            specs = [TaskSpec(name, "mteb", split=split)]
        else:
            raise unknown_task(item, option)
        for spec in specs:
            other = resolved.get(spec.name)
            if other is not None and other != spec:
                raise HarnessError(f"{option}: two different tasks are both named {spec.name!r}; rename one file.")
            resolved[spec.name] = spec
    return list(resolved.values())


def task_names(items: Sequence[str]) -> list[str]:
    """Task names behind presets and files, without reading files or importing mteb."""
    names: list[str] = []
    for item in items:
        if item in PRESETS:
            names.extend(spec.name for spec in PRESETS[item][1])
        elif _looks_like_file(item):
            names.append(_local_name(file_split(item)[0]))
        else:
            names.append(item)
    return list(dict.fromkeys(names))


def build_mteb_task(spec: TaskSpec) -> AbsTask:
    """The mteb task object that evaluates ``spec``."""
    if spec.kind == "offline":
        task = OFFLINE_TASKS[spec.name]
        if task.min_score is None or task.max_score is None:
            data = task.loader()
            return local_task(
                About(spec.name, data.kind, task.description, data.digest[:REVISION_DIGITS], task.reference), data
            )
        about = About(spec.name, "STS", task.description, "gensim-4.4", task.reference)
        return sts_task(about, task.loader(), (task.min_score, task.max_score))
    if spec.kind == "file":
        assert spec.data is not None
        return file_task(spec.data)
    import mteb

    return mteb.get_task(
        spec.name,
        hf_subsets=list(spec.subsets) if spec.subsets else None,
        eval_splits=[spec.split] if spec.split else None,
    )


def task_version(spec: TaskSpec, task: AbsTask) -> str:
    """What identifies the data a score was computed on: mteb's dataset revision of the task (a
    task file's first 12 sha256 hex digits; a reranking file's with the protocol that chose its
    queries, unless every query; a split chosen with ``NAME:split`` after ``@``), then the evaluated subsets
    where only some were."""
    revision = str(task.metadata.revision)
    if (
        spec.protocol is not None and spec.protocol != "all"
    ):  # mteb's protocol keeps the version scores had before protocols
        revision = f"{revision}:{spec.protocol}"
    if spec.split is not None:  # another split is other data: never ranked with the task's own eval splits
        revision = f"{revision}@{spec.split}"
    return f"{revision}:{','.join(spec.subsets)}" if spec.subsets else revision


def file_versions(items: Sequence[str]) -> dict[str, str]:
    """Task name -> version of the task files among ``items`` (read now; nothing else resolved), as
    a run given them records it by default (a reranking file's with the default protocol)."""
    found = [
        (read_task_file(expand(path, "task file")), split)
        for path, split in (file_split(item) for item in items if item not in PRESETS and _looks_like_file(item))
    ]
    return {
        data.name: data.digest[:REVISION_DIGITS]
        + (f":{RERANK_PROTOCOLS[0]}" if data.kind == "Reranking" else "")
        + (f"@{split}" if split else "")
        for data, split in found
    }


def _local_name(item: str) -> str:
    """A task file's name (its stem) or a folder's (its name), without reading it."""
    path = Path(item)
    try:
        return path.name if path.is_dir() else path.stem
    except OSError:
        return path.stem
