"""Method registry: entry points, explicit plug-ins, built-ins winning, did-you-mean."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import pytest

from harness import registry
from harness.errors import HarnessError
from harness.method import Method
from methods.untrained import PromptEOL, UntrainedLast, UntrainedMean

PLUGIN_MODULE = textwrap.dedent(
    '''
    from dataclasses import dataclass
    from harness.method import Method, MethodConfig, option
    from methods.untrained import UntrainedMean

    @dataclass
    class EchoConfig(MethodConfig):
        pooling: str = option("mean", "how to pool")

    class Echo(UntrainedMean):
        """A third-party method."""
        Config = EchoConfig
        summary = "out-of-tree test plug-in"

    class Impostor(Method):
        summary = "claims a built-in name"
    '''
)


def test_builtins_come_from_the_entry_point_group():
    assert registry.get_method("untrained-mean") is UntrainedMean
    assert registry.get_method("untrained-last") is UntrainedLast
    assert registry.get_method("prompteol") is PromptEOL


def test_unknown_method_suggests_and_lists():
    with pytest.raises(HarnessError) as info:
        registry.get_method("untrained-maen")
    message = str(info.value)
    assert "Did you mean 'untrained-mean'" in message
    assert "prompteol" in message and "untrained-last" in message


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A tiny plug-in distribution: a module plus a dist-info with entry points, on sys.path."""
    (tmp_path / "repeat_plugin.py").write_text(PLUGIN_MODULE)
    info = tmp_path / "repeat_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: repeat-plugin\nVersion: 0.1\n")
    (info / "top_level.txt").write_text("repeat_plugin\n")
    (info / "entry_points.txt").write_text(
        "[harness.methods]\nrepeat = repeat_plugin:Echo\nprompteol = repeat_plugin:Impostor\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("repeat_plugin", None)


def test_out_of_tree_entry_point_is_found_and_builtins_win(installed_plugin):
    echo = registry.get_method("repeat")
    assert echo.__module__ == "repeat_plugin" and issubclass(echo, Method)
    assert "repeat" in registry.method_names()
    assert registry.provenance(echo) == {
        "module": "repeat_plugin",
        "distribution": "repeat-plugin",
        "version": "0.1",
        "source_sha256": hashlib.sha256((installed_plugin / "repeat_plugin.py").read_bytes()).hexdigest(),
    }
    assert registry.get_method("prompteol") is PromptEOL  # the clash goes to the built-in


def test_out_of_tree_plugin_through_the_real_cli(installed_plugin):
    env = {"PYTHONPATH": str(installed_plugin), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "methods", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "repeat"' in done.stdout and "out-of-tree test plug-in" in done.stdout


def test_plugins_option_imports_a_module_by_name(tmp_path, monkeypatch):
    (tmp_path / "named_plugin.py").write_text(
        "from harness.registry import register\n"
        "from methods.untrained import UntrainedLast\n"
        "class Named(UntrainedLast):\n    summary = 'registered by import'\n"
        "register('named', Named)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_registered", {})
    with pytest.raises(HarnessError):
        registry.get_method("named")
    registry.import_plugins(["named_plugin"])
    assert registry.get_method("named").summary == "registered by import"
    sys.modules.pop("named_plugin", None)


def test_missing_plugin_module_is_a_clean_error():
    with pytest.raises(HarnessError, match="--plugins 'no_such_plugin_module'"):
        registry.import_plugins(["no_such_plugin_module"])


def test_an_entry_point_that_is_not_a_method_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_registered", {"bogus": "os:getcwd"})
    with pytest.raises(HarnessError, match="not a harness Method"):
        registry.get_method("bogus")
