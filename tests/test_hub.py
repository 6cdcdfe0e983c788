"""The hub probe: one unreachable answer stands for every repo asked after it; a run on a hub
backbone fails at once with one line when the hub is unreachable (nothing recorded), unless the
backbone is in the hub cache."""

from __future__ import annotations

import json
import subprocess

from harness import hub
from tests.conftest import HARNESS, harness_env, run_args, sqlite_rows


def test_an_unreachable_hub_is_probed_once_for_many_repos(monkeypatch):
    calls = []

    def unreachable(url, timeout):
        calls.append(url)
        raise ConnectionError("timed out")

    monkeypatch.setattr(hub, "get_hf_file_metadata", unreachable)  # the name hub.py calls
    monkeypatch.setattr(hub, "offline", lambda: False)
    monkeypatch.setattr(hub, "_unreachable", [])
    hub.problem.cache_clear()
    try:
        answers = [hub.problem(repo) for repo in ("org/a", "org/b", "org/c")]
    finally:
        hub.problem.cache_clear()
    assert len(calls) == 1 and "org/a" in calls[0]
    assert len(set(answers)) == 1 and "cannot be reached (timed out)" in answers[0]


def test_an_unreachable_hub_fails_at_once_with_one_line_and_records_nothing(tmp_path, small_sts_file):
    """HF_ENDPOINT on a closed loopback port: the hub is unreachable without touching the network."""
    env = harness_env(HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    db = tmp_path / "h.db"
    done = subprocess.run(
        [*HARNESS, *run_args(db, "some-org/some-model", small_sts_file)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Leaderboard: ")]
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "hf download some-org/some-model" in lines[0], (
        done.stderr
    )
    assert ".." not in lines[0] and not db.exists()

    listing = subprocess.run([*HARNESS, "backbones", "--json"], env=env, capture_output=True, text=True, check=True)
    hub_rows = [row for row in json.loads(listing.stdout) if row["kind"] == "hub"]
    assert hub_rows and all(not row["available"] and "cannot be reached" in row["how"] for row in hub_rows)


def test_a_cached_hub_backbone_still_runs_when_the_hub_is_unreachable(tmp_path, tiny_llama_dir, small_sts_file):
    """The hub cache layout (refs/main -> snapshots/<commit>/) holding the tiny Llama: the run loads
    it without asking the unreachable hub, and records the hub id as its backbone."""
    import shutil

    commit = "0" * 40
    repo = tmp_path / "hf-home" / "hub" / "models--some-org--tiny-llama"
    shutil.copytree(tiny_llama_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = harness_env(HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf-home"))
    db = tmp_path / "h.db"
    done = subprocess.run(
        [*HARNESS, *run_args(db, "some-org/tiny-llama", small_sts_file)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sqlite_rows(db, "SELECT status, backbone FROM runs") == [("finished", "some-org/tiny-llama")]
