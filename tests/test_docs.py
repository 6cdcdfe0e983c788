"""What the docs say about files matches the code that writes them: every task file of
benchmarks/dev_tasks.py that README.md or docs/*.md names is named under dev-tasks/, where it is written."""

from __future__ import annotations


def test_the_docs_name_task_files_where_dev_tasks_writes_them(tmp_path, shared_data):
    import importlib.util
    import re

    from tests.conftest import PROJECT

    spec = importlib.util.spec_from_file_location("dev_tasks", PROJECT / "benchmarks" / "dev_tasks.py")
    dev_tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev_tasks)
    written = {path.name for path in dev_tasks.write(tmp_path / "dev-tasks", shared_data)}
    pattern = re.compile(r"[\w./-]*\b(?:" + "|".join(re.escape(name) for name in written) + r")")
    for doc in [PROJECT / "README.md", *(PROJECT / "docs").glob("*.md")]:
        for found in pattern.findall(doc.read_text(encoding="utf-8")):
            assert found.startswith("dev-tasks/") and found.split("/", 1)[1] in written, (doc.name, found)
