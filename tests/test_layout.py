"""The tests mirror the packages: each folder of tests/ is named after the package it tests
(harness's subpackages, leaderboard, methods), apart from the two that test across them
(reliability: kills, interrupts, hostile input; benchmarks: the scripts in benchmarks/), and each
package has its folder."""

from __future__ import annotations

from tests.conftest import PROJECT

ACROSS = {"reliability", "benchmarks"}


def _packages() -> set[str]:
    harness = {p.parent.name for p in (PROJECT / "harness").glob("*/__init__.py")}
    return harness | {"leaderboard", "methods"}


def test_every_test_folder_is_named_after_a_package_or_tests_across_them():
    folders = {p.parent.name for p in (PROJECT / "tests").glob("*/__init__.py")}
    assert folders - _packages() - ACROSS == set()


def test_every_package_has_its_test_folder():
    folders = {p.parent.name for p in (PROJECT / "tests").glob("*/__init__.py")}
    assert _packages() - folders == set()
