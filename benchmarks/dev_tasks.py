"""Write the development tasks as harness task files, from the public datasets on the hub or in a
local folder.

    .venv/bin/python benchmarks/dev_tasks.py [OUT_DIR] [--from hub|DATA]   # default: dev-tasks/, hub

``--from hub`` (the default) reads them with ``datasets.load_dataset``: STS-B's train and validation
splits from ``mteb/stsbenchmark-sts`` (the revision mteb pins), SICK's validation split (its trial
pairs) from ``RobZamp/sick``, MRPC's validation split from ``nyu-mll/glue`` (config ``mrpc``) and
TREC QA's answer-sentence selection dev split from ``lucadiliello/trecqa`` (split ``dev``, 1,364
candidates; its ``dev_clean`` keeps only questions with a right and a wrong candidate). The hub's
SICK validation split holds 495 of the trial's 500 pairs, GLUE's MRPC validation split is 408 pairs
cut from MSRP train, not the 500-pair validation cut of the local copy below, and the hub's TREC QA
dev holds 1,364 candidates where the released dev split below holds 1,148 (not checked here which
questions differ: no hub on this project's machines): scores on the two routes are not comparable.

``--from DATA`` reads a local folder that holds the datasets as released: ``stsb/sts-dev.csv`` and ``stsb/sts-train.csv`` (STS
Benchmark), ``sick/SICK_trial.txt`` (SICK), ``trecqa/dev.csv`` (TREC QA answer-sentence
selection, as distributed with its README) and ``msrp/msr-para-val.tsv`` (MSR paraphrase corpus,
its validation part).

Writes OUT_DIR/stsb-dev.tsv (STS Benchmark dev, 1,500 pairs, scores 0-5) and
OUT_DIR/sick-trial.tsv (SICK trial, 500 pairs, relatedness 1-5), each with the columns sentence1,
sentence2, score, so that `harness run --tasks dev-tasks/stsb-dev.tsv --tasks
dev-tasks/sick-trial.tsv` evaluates on them (task names stsb-dev and sick-trial). These are the
splits to tune and compare on; the test splits are never used here. Also writes
OUT_DIR/stsb-train.tsv (STS-B train, 5,749 pairs) in the same layout, a source of positive pairs
for training data such as `random-negatives:DATA/sick/SICK_train.txt+dev-tasks/stsb-train.tsv`.

Beyond STS: OUT_DIR/trecqa-dev.csv (TREC QA dev as a reranking file: query, document, label, one
row per candidate answer sentence), OUT_DIR/trecqa-dev-beir/ (the same as a BEIR retrieval folder:
the questions with at least one answer, against a corpus of every distinct candidate sentence of
the split) and OUT_DIR/msrp-val.tsv (MSRP val as a pair-classification file: sentence1,
sentence2, label).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def _stsb(path: Path) -> list[tuple[str, str, str]]:
    """STS-B's own layout: no header, tab-separated genre, source, year, id, score, s1, s2 (some
    rows carry extra trailing fields)."""
    with path.open(encoding="utf-8") as handle:
        return [(row[5], row[6], row[4]) for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _sick(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["sentence_A"], r["sentence_B"], r["relatedness_score"]) for r in rows]


def _trecqa(path: Path) -> list[tuple[str, str, str]]:
    """(question, candidate sentence, label 0/1), in the file's order."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [(r["qtext"], r["atext"], r["label"]) for r in csv.DictReader(handle)]


def _msrp(path: Path) -> list[tuple[str, str, str]]:
    """MSRP's own layout: a BOM, CRLF lines, tab-separated Quality, #1 ID, #2 ID, #1 String,
    #2 String, and quotes that are part of the text (never field delimiters)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["#1 String"], r["#2 String"], r["Quality"]) for r in rows]


def _write_tsv(target: Path, header: str, rows: list[tuple[str, str, str]]) -> Path:
    target.write_text("\n".join([header] + ["\t".join(row) for row in rows]) + "\n", encoding="utf-8")
    return target


def _beir(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A BEIR folder of TREC QA: queries with an answer; the corpus is every candidate sentence."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    documents = {text: f"d{i}" for i, text in enumerate(dict.fromkeys(answer for _, answer, _ in rows))}
    questions = {text: f"q{i}" for i, text in enumerate(dict.fromkeys(q for q, _, label in rows if label == "1"))}
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for text, ident in documents.items():
            corpus.write(json.dumps({"_id": ident, "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for text, ident in questions.items():
            queries.write(json.dumps({"_id": ident, "text": text}) + "\n")
    relevant = dict.fromkeys((questions[q], documents[a]) for q, a, label in rows if label == "1")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, d in relevant]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _write_trecqa(out: Path, rows: list[tuple[str, str, str]]) -> list[Path]:
    """TREC QA dev as a reranking file and as a BEIR retrieval folder."""
    with (out / "trecqa-dev.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([("query", "document", "label"), *rows])
    return [out / "trecqa-dev.csv", _beir(out / "trecqa-dev-beir", rows)]


def write(out: Path, data: Path) -> list[Path]:
    """The task files, from the datasets in ``data``, written under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    sources = {
        "stsb-dev": _stsb(data / "stsb" / "sts-dev.csv"),
        "sick-trial": _sick(data / "sick" / "SICK_trial.txt"),
        "stsb-train": _stsb(data / "stsb" / "sts-train.csv"),
    }
    for name, rows in sources.items():
        target = out / f"{name}.tsv"
        lines = ["sentence1\tsentence2\tscore"] + ["\t".join(row) for row in rows]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(target)
    written += _write_trecqa(out, _trecqa(data / "trecqa" / "dev.csv"))
    written.append(
        _write_tsv(out / "msrp-val.tsv", "sentence1\tsentence2\tlabel", _msrp(data / "msrp" / "msr-para-val.tsv"))
    )
    return written


#: task file -> (hub dataset, config, split, its text and score columns)
HUB = {
    "stsb-dev": ("mteb/stsbenchmark-sts", None, "validation", ("sentence1", "sentence2", "score")),
    "sick-trial": ("RobZamp/sick", None, "validation", ("sentence_A", "sentence_B", "relatedness_score")),
    "stsb-train": ("mteb/stsbenchmark-sts", None, "train", ("sentence1", "sentence2", "score")),
    "msrp-val": ("nyu-mll/glue", "mrpc", "validation", ("sentence1", "sentence2", "label")),
}
#: TREC QA's answer-sentence selection: (hub dataset, split, its question, answer and label columns)
TRECQA_HUB = ("lucadiliello/trecqa", "dev", ("question", "answer", "label"))
REVISIONS = {"mteb/stsbenchmark-sts": "b0fddb56ed78048fa8b90373c8a3cfc37b684831"}  # mteb's STSBenchmark pin


def _one_line(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")  # a TSV field


def _number(value: object) -> str:
    """A score or label as its shortest text: 1 for a label, 3.7 for a float32 column's
    3.700000047683716."""
    import numpy as np

    number = float(value)  # type: ignore[arg-type]
    if number.is_integer():
        return str(int(number))
    return str(np.float32(number)) if float(np.float32(number)) == number else repr(number)


def write_from_hub(out: Path) -> list[Path]:
    """The task files of :data:`HUB` and :data:`TRECQA_HUB`, read from the hub, written under ``out``."""
    from datasets import load_dataset

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (path, config, split, columns) in HUB.items():
        rows = load_dataset(path, config, split=split, revision=REVISIONS.get(path))
        header = "sentence1\tsentence2\t" + ("label" if columns[2] == "label" else "score")
        flat = [(_one_line(r[columns[0]]), _one_line(r[columns[1]]), _number(r[columns[2]])) for r in rows]
        written.append(_write_tsv(out / f"{name}.tsv", header, flat))
    path, split, (question, answer, label) = TRECQA_HUB
    rows = load_dataset(path, split=split, revision=REVISIONS.get(path))
    written += _write_trecqa(out, [(r[question], r[answer], _number(r[label])) for r in rows])
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("dev-tasks"))
    parser.add_argument(
        "--from", dest="data", default="hub", help="hub (the default), or a folder of released datasets (see above)"
    )
    args = parser.parse_args()
    if args.data == "hub":
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            parser.error(
                "--from hub: HF_HUB_OFFLINE is set; give --from DATA, a folder of the released datasets (see --help)"
            )
        written = write_from_hub(args.out)
    elif not Path(args.data).is_dir():
        parser.error(f"--from {args.data}: no such folder of datasets (stsb/, sick/, trecqa/, msrp/ as released)")
    else:
        written = write(args.out, Path(args.data))
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
