"""An out-of-tree plug-in in a temporary folder, loaded by name only: listed, run, evaluated,
exported and reloaded; its provenance recorded; its failures one message with nothing left."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app

PLUGIN = """
from dataclasses import dataclass

from harness.method import Method, MethodConfig
from harness.options import template_option
from harness.registry import register


@dataclass
class TwiceConfig(MethodConfig):
    template: str = template_option("{text} ; {pool}{text}{/pool}", "the text twice, the second pooled")


class Twice(Method):
    Config = TwiceConfig
    summary = "a plug-in from a temporary folder"

    def build_encoder(self, backbone, settings):
        from harness.encoder import PooledEncoder

        return PooledEncoder(backbone.model, backbone.tokenizer, pooling="mean", settings=settings, template=self.config.template)


class Broken(Twice):
    def export_encoder(self, encoder, model, folder):
        (folder / "half-written.bin").write_bytes(b"x")
        raise RuntimeError("the hook fell over")


register("{name}", Twice)
register("{name}-broken", Broken)
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    name = f"twice_plugin_{os.getpid()}_{tmp_path.name[-8:]}".replace("-", "_")
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / f"{name}.py").write_text(PLUGIN.replace("{name}", name.replace("_", "-")))
    monkeypatch.syspath_prepend(str(folder))
    return name, folder / f"{name}.py"


def _invoke(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_a_plugin_is_listed_run_evaluated_exported_and_reloaded_by_name(
    tmp_path, plugin, tiny_llama_dir, small_sts_file
):
    from harness.export.model import load_encoder
    from leaderboard.store import open_store
    from tests.export.test_model_export import _harness_vectors

    module, source = plugin
    method = module.replace("_", "-")
    db = str(tmp_path / "h.db")
    code, out = _invoke("methods", "--plugins", module)
    assert code == 0 and method in out
    code, out = _invoke(
        "run",
        "--method",
        method,
        "--plugins",
        module,
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(small_sts_file),
        "--db",
        db,
    )
    assert code == 0, out
    versions = open_store(db).get_run(1)["versions"]
    assert versions["method.module"] == module and versions["method.distribution"] == "-"
    assert versions["method.source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    other = tmp_path / "other.tsv"
    other.write_text(small_sts_file.read_text())
    code, out = _invoke("eval", "1", "--tasks", str(other), "--plugins", module, "--db", db)
    assert code == 0, out
    code, out = _invoke("export", "1", "--model", str(tmp_path / "encoder"), "--plugins", module, "--db", db)
    assert code == 0, out
    texts = ["the cat sat on the mat", "rain falls"]
    np.testing.assert_allclose(
        load_encoder(tmp_path / "encoder").encode(texts), _harness_vectors(db, texts), atol=1e-5, rtol=0
    )


def test_without_the_plugin_an_export_says_so_and_leaves_nothing(tmp_path, plugin, tiny_llama_dir, small_sts_file):
    module, _ = plugin
    db = str(tmp_path / "h.db")
    code, out = _invoke(
        "run",
        "--method",
        module.replace("_", "-"),
        "--plugins",
        module,
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(small_sts_file),
        "--db",
        db,
    )
    assert code == 0, out
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "export", "1", "--model", str(tmp_path / "encoder"), "--db", db],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--plugins" in " ".join(done.stderr.split())
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("h.db")) == ["plugins", "tiny-sts.tsv"]
    env["HARNESS_PLUGINS"] = module
    env["PYTHONPATH"] = str(tmp_path / "plugins")
    done = subprocess.run(
        [sys.executable, "-m", "harness", "export", "1", "--model", str(tmp_path / "encoder"), "--db", db],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "encoder" / "harness-encoder.json").exists()


def test_a_failing_export_hook_is_one_message_and_leaves_no_folder(tmp_path, plugin, tiny_llama_dir, small_sts_file):
    module, _ = plugin
    db = str(tmp_path / "h.db")
    code, out = _invoke(
        "run",
        "--method",
        module.replace("_", "-") + "-broken",
        "--plugins",
        module,
        "--backbone",
        str(tiny_llama_dir),
        "--tasks",
        str(small_sts_file),
        "--db",
        db,
    )
    assert code == 0, out
    code, out = _invoke("export", "1", "--model", str(tmp_path / "encoder"), "--plugins", module, "--db", db)
    assert code == 2 and "the hook fell over" in out and "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("h.db")) == ["plugins", "tiny-sts.tsv"]


def test_a_plugin_that_fails_to_import_is_one_message(tmp_path, monkeypatch):
    (tmp_path / "exploding_plugin.py").write_text("raise ValueError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out = _invoke("methods", "--plugins", "exploding_plugin")
    assert code == 2 and "exploding_plugin" in out and "boom at import" in out
