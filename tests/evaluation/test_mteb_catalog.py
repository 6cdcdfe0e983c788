"""mteb's task list without importing mteb (harness/evaluation/mteb_catalog.py): written once per mteb
version, read by later processes for "did you mean", and rebuilt from mteb where it is damaged."""

from __future__ import annotations

import json


def test_an_unknown_task_name_gets_a_suggestion_without_importing_mteb(fresh_mteb_catalog, tmp_path):
    import subprocess
    import sys

    catalog = fresh_mteb_catalog
    catalog.catalog()  # the first use writes the list for this mteb version
    (written,) = (tmp_path / "cache").glob("mteb-tasks-*.json")
    probe = (
        "import sys\nfrom harness.errors import HarnessError\nfrom harness.evaluation.tasks import resolve_tasks\n"
        "try:\n    resolve_tasks(['STSBenchmrk'])\nexcept HarnessError as e:\n    print(e)\n"
        "print('mteb imported' if 'mteb' in sys.modules else 'mteb not imported')\n"
    )
    env = {**__import__("os").environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert "Did you mean 'STSBenchmark'" in out and "harness tasks --search" in out
    assert out.strip().endswith("mteb not imported")
    written.write_text("{ damaged")  # a damaged list is rebuilt from mteb, never trusted
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout
    assert "Did you mean 'STSBenchmark'" in out and json.loads(written.read_text())["tasks"]
