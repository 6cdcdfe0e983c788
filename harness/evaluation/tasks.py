"""Evaluation tasks: presets, offline tasks from the gensim wheel, and user STS files.

``--tasks`` items are resolved here without importing mteb when possible: a preset name, a task
file (``.tsv``/``.csv``/``.jsonl``), or any mteb task name (checked against mteb's registry).
Every resolved task becomes an mteb ``AbsTaskSTS`` (or mteb's own task) at evaluation time.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data import offline_data
from harness.errors import HarnessError
from harness.paths import expand
from harness.registry import IMPORTED_PLUGINS
from harness.evaluation.catalog import catalog
from harness.data.task_files import SUFFIXES, StsPairs, read_sts_file

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask


REVISION_DIGITS = 12  # a task file's version: this many hex digits of its sha256


@dataclass(frozen=True)
class OfflineTask:
    description: str
    reference: str
    loader: Callable[[], tuple[list[str], list[str], list[float]]]
    min_score: float
    max_score: float


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
}


@dataclass(frozen=True)
class TaskSpec:
    """A resolved task: ``kind`` is ``offline``, ``file`` or ``mteb`` (hub-backed)."""

    name: str
    kind: str
    subsets: tuple[str, ...] | None = None
    pairs: StsPairs | None = None

    def record(self) -> dict[str, Any]:
        """What goes into the recorded config: enough to tell two task versions apart."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.subsets:
            out["subsets"] = list(self.subsets)
        if self.pairs is not None:
            out.update(path=str(self.pairs.path), sha256=self.pairs.digest, pairs=len(self.pairs.scores))
        return out


def _mteb(name: str, *subsets: str) -> TaskSpec:
    return TaskSpec(name, "mteb", subsets or None)


_STS7 = [_mteb(n) for n in ("SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark")]
PRESETS: dict[str, tuple[str, list[TaskSpec]]] = {
    "offline": (
        "the default here: Lee documents, WordSim-353, SimLex-999 (no hub needed)",
        [TaskSpec(name, "offline") for name in OFFLINE_TASKS],
    ),
    "sts7": ("the paper's Avg(7): SICK-R, STS12-16, STS-B (test splits; needs the hub)", _STS7),
    "sts10": (
        "the paper's Avg(10): sts7 + BIOSSES, STS17 en-en, STS22 en (needs the hub)",
        [_mteb("BIOSSES"), *_STS7, _mteb("STS17", "en-en"), _mteb("STS22", "en")],
    ),
}


LOCAL_KINDS = {
    "STS pairs": "a .tsv, .csv or .jsonl file with sentence1, sentence2 and score (any range); "
    "evaluated as an mteb STS task (cosine Spearman). Its name is the file's stem.",
}


def _looks_like_file(item: str) -> bool:
    if item.lower().endswith(SUFFIXES) or "/" in item or "\\" in item or item.startswith("~"):
        return True
    try:
        return Path(item).is_file()
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


def unknown_task(name: str) -> HarnessError:
    """An unknown ``--tasks`` item, with the closest presets and mteb task names."""
    known = [*PRESETS, *sorted(catalog().accepted)]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:  # a wrong case or a fragment: STSB, stsbenchmark
        close = [k for k in known if name.lower() in k.lower() or k.lower() == name.lower()][:3]
    suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return HarnessError(
        f"--tasks: unknown task {name!r}.{suggestion} A task is a preset ({', '.join(PRESETS)}), a task file "
        f"({', '.join(SUFFIXES)}) or an mteb task name; `harness tasks --search WORD` lists them."
    )


def resolve_tasks(items: Sequence[str]) -> list[TaskSpec]:
    """Expand presets, read task files and check mteb names; duplicates are kept once."""
    if not items:
        raise HarnessError("--tasks: no tasks given.")
    resolved: dict[str, TaskSpec] = {}
    for item in items:
        if item in PRESETS:
            specs = PRESETS[item][1]
        elif _looks_like_file(item):
            specs = [TaskSpec(Path(item).stem, "file", pairs=read_sts_file(expand(item, "task file")))]
        elif _mteb_task_exists(item):
            specs = [TaskSpec(item, "mteb")]
        else:
            raise unknown_task(item)
        for spec in specs:
            other = resolved.get(spec.name)
            if other is not None and other != spec:
                raise HarnessError(
                    f"--tasks: two different tasks are both named {spec.name!r}; rename one file."
                )
            resolved[spec.name] = spec
    return list(resolved.values())


def task_names(items: Sequence[str]) -> list[str]:
    """Task names behind presets and files, without reading files or importing mteb."""
    names: list[str] = []
    for item in items:
        if item in PRESETS:
            names.extend(spec.name for spec in PRESETS[item][1])
        elif _looks_like_file(item):
            names.append(Path(item).stem)
        else:
            names.append(item)
    return list(dict.fromkeys(names))


def _sts_task(
    name: str,
    description: str,
    reference: str | None,
    pairs: tuple[list[str], list[str], list[float]],
    revision: str,
    min_score: float,
    max_score: float,
) -> AbsTask:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.task_metadata import TaskMetadata

    sentence1, sentence2, scores = pairs

    def load_data(self: AbsTaskSTS, num_proc: int | None = None, **kwargs: Any) -> None:
        data = {"sentence1": sentence1, "sentence2": sentence2, "score": scores}
        self.dataset = DatasetDict({"test": Dataset.from_dict(data)})
        self.data_loaded = True

    metadata = TaskMetadata(
        name=name,
        description=description,
        reference=reference,
        dataset={"path": f"harness-local/{name}", "revision": revision},
        type="STS",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="cosine_spearman",
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators="human-annotated",
        dialect=None,
        sample_creation="found",
        bibtex_citation="",
    )
    cls = type(
        f"HarnessSTS_{name}",
        (AbsTaskSTS,),
        {"metadata": metadata, "min_score": min_score, "max_score": max_score, "load_data": load_data},
    )
    return cls()


def build_mteb_task(spec: TaskSpec) -> AbsTask:
    """The mteb task object that evaluates ``spec``."""
    if spec.kind == "offline":
        task = OFFLINE_TASKS[spec.name]
        return _sts_task(
            spec.name, task.description, task.reference, task.loader(), "gensim-4.4",
            task.min_score, task.max_score,
        )
    if spec.kind == "file":
        pairs = spec.pairs
        assert pairs is not None
        return _sts_task(
            spec.name,
            f"User STS file {pairs.path} ({len(pairs.scores)} pairs).",
            None,
            (pairs.sentence1, pairs.sentence2, pairs.scores),
            pairs.digest[:REVISION_DIGITS],
            min(pairs.scores),
            max(pairs.scores),
        )
    import mteb

    return mteb.get_task(spec.name, hf_subsets=list(spec.subsets) if spec.subsets else None)


def task_version(spec: TaskSpec, task: AbsTask) -> str:
    """What identifies the data a score was computed on: mteb's dataset revision of the task (a
    task file's first 12 sha256 hex digits), then the evaluated subsets where only some were."""
    revision = str(task.metadata.revision)
    return f"{revision}:{','.join(spec.subsets)}" if spec.subsets else revision


def file_versions(items: Sequence[str]) -> dict[str, str]:
    """Task name -> version of the task files among ``items`` (read now; nothing else resolved)."""
    return {
        Path(item).stem: read_sts_file(expand(item, "task file")).digest[:REVISION_DIGITS]
        for item in items
        if item not in PRESETS and _looks_like_file(item)
    }
