"""The architecture's rules, checked: import contracts (import-linter, from pyproject.toml), module
sizes, and the import paths that the docs give plug-in authors."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "methods", "leaderboard")
MODULE_LINES = 400  # no module over this many lines
MIGRATIONS = ROOT / "leaderboard" / "schema_versions"  # Alembic's generated revisions are history, not code to walk


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", result.stdout)
    assert kept and int(kept.group(1)) >= 5 and kept.group(2) == "0", result.stdout[-2000:]


def test_a_forbidden_import_breaks_a_contract(tmp_path):
    """The contracts can fail: a copy of the tree where the leaderboard imports torch is refused."""
    for package in PACKAGES:
        subprocess.run(["cp", "-r", str(ROOT / package), str(tmp_path / package)], check=True)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "leaderboard" / "errors.py").write_text(
        (ROOT / "leaderboard" / "errors.py").read_text() + "\nimport torch\n"
    )
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1 and "leaderboard is not allowed to import torch" in result.stdout, result.stdout[
        -3000:
    ]


def _modules() -> list[Path]:
    return [p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if MIGRATIONS not in p.parents]


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _modules()}
    assert len(sizes) > 50
    assert {name: n for name, n in sizes.items() if n > MODULE_LINES} == {}


def test_the_core_has_no_flat_modules_beyond_its_contracts():
    """The top of ``harness/`` holds the contracts plug-ins import and shared plumbing; every other
    concern is a folder."""
    top = sorted(p.stem for p in (ROOT / "harness").glob("*.py"))
    assert top == [
        "__init__",
        "__main__",
        "config",
        "encoder",
        "errors",
        "faults",
        "hub",
        "method",
        "options",
        "paths",
        "prompts",
        "ranks",
        "registry",
        "task_versions",
    ]


def _documented_names() -> set[str]:
    """Every dotted ``harness.x.y`` name the plug-in guide, the architecture page and the README give."""
    text = "".join((ROOT / name).read_text() for name in ("README.md", "docs/plugins.md", "docs/architecture.md"))
    not_modules = {"harness.db", "harness.methods"}  # the default leaderboard file; the entry-point group
    return set(re.findall(r"`(harness(?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text)) - not_modules


@pytest.mark.parametrize("dotted", sorted(_documented_names()))
def test_every_documented_import_path_works(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return
    pytest.fail(f"{dotted} does not import")
