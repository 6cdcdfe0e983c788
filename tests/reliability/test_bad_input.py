"""Bad input records nothing: a missing or malformed training file, a bad or misspelt option and an
output folder that is a file each end with one clean message (exit 2), no database and no folder."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import HARNESS, harness_env, infonce_run_args


@pytest.mark.parametrize(
    "case, extra, expected",
    [
        ("missing-train-data", ["--train-data", "nowhere.jsonl"], "nowhere.jsonl: no such file"),
        ("malformed-train-data", ["--train-data", "BAD"], "expected triplet columns"),
        ("bad-option-value", ["--set", "method_args.pooling=max"], "'max' is not one of 'mean', 'last'"),
        ("misspelled-option", ["--set", "method_args.stpes=10"], "'stpes' (did you mean 'steps'?)"),
        ("output-dir-is-a-file", ["--output-dir", "FILE"], "is a file, not a folder"),
    ],
)
def test_bad_input_records_nothing(tmp_path, tiny_llama_dir, triplets, small_sts_file, case, extra, expected):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "no such columns"}) + "\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    extra = [str(bad) if x == "BAD" else str(a_file) if x == "FILE" else x for x in extra]
    args = infonce_run_args(
        tmp_path / "h.db", tiny_llama_dir, triplets, small_sts_file, tmp_path / "runs", "method_args.steps=2"
    )
    for option in ("--train-data", "--output-dir"):  # the case's value replaces the default one
        if option in extra:
            at = args.index(option)
            del args[at : at + 2]
    done = subprocess.run([*HARNESS, *args, *extra], env=harness_env(), capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "::" not in done.stderr and ".." not in done.stderr.replace("...", "")
    assert not (tmp_path / "h.db").exists()
    assert not (tmp_path / "runs").exists()
