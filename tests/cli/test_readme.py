"""The README as a newcomer follows it: its plug-in is complete as written (saved as its file, it
registers, lists its option and runs), and every command of its shell blocks runs, in order, in a
fresh folder (on a tiny backbone and task file instead of the defaults)."""

from __future__ import annotations

import math
import re
import shlex

from typer.testing import CliRunner

from harness.cli import app
from leaderboard.store import open_store
from tests.conftest import PROJECT


def test_the_readmes_plugin_runs_as_written(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n# (my_echo\.py)\n(.*?)```", text, re.S)
    assert code is not None, "the README's plug-in block"
    (tmp_path / code.group(1)).write_text(code.group(2), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    command = shlex.split(re.search(r"harness (run --plugins my_echo [^#\n]*)", text).group(1))
    listed = CliRunner().invoke(app, ["methods", "my-echo", "--plugins", "my_echo"])
    assert listed.exit_code == 0 and "Say it again" in listed.output
    at = command.index("--tasks")
    command[at + 1] = str(small_sts_file)  # the README's offline tasks, cut to a tiny file
    db = tmp_path / "h.db"
    result = CliRunner().invoke(app, [*command, "--backbone", str(tiny_llama_dir), "--db", str(db)])
    assert result.exit_code == 0, result.output
    record = open_store(db).get_run(1)
    assert record["method"] == "my-echo" and math.isfinite(record["scores"]["tiny-sts"])


# what the walk does not run, and why
NOT_WALKED = {
    "bash .ci/setup": "builds the environment this test runs in",
    ".venv/bin/python -m pytest": "the suite this test belongs to",
    "browse": "serves until Ctrl-C; tests/leaderboard/test_browse.py drives it in a browser",
}


def readme_commands(text: str) -> list[list[str]]:
    """Every command of the README's bash blocks, in order: variables expanded, comments and the
    environment assignments in front of a command dropped, `a && b` as two commands."""
    variables: dict[str, str] = {}
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if len(words) == 1 and re.fullmatch(r"\w+=\S+", words[0]):
                    name, value = words[0].split("=", 1)
                    variables[name] = value
                    continue
                words = [variables.get(w[1:], w) if w.startswith("$") else w for w in words]
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words = words[1:]
                if words:
                    commands.append(words)
    return commands


def wide_tiny_llama(folder):
    """The tiny Llama with 256-wide embeddings, so that the README's `--dims 64,128` apply."""
    from tests.conftest import make_tiny_llama, make_tokenizer

    make_tiny_llama(hidden_size=256).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


def test_every_readme_command_runs_in_order_in_a_fresh_folder(tmp_path, small_sts_file, monkeypatch):
    """The README's shell blocks, walked as a newcomer types them into a fresh folder: each command
    must exit 0 (run numbers the later commands name included). Only the backbone and the tasks of
    `harness run` are swapped for a tiny local model and task file, so that the walk takes a minute
    instead of the twenty the real ones take (README: measured figures)."""
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n# (my_echo\.py)\n(.*?)```", text, re.S)
    (tmp_path / code.group(1)).write_text(code.group(2), encoding="utf-8")
    backbone = wide_tiny_llama(tmp_path / "wide-tiny-llama")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_BASELINE", raising=False)  # the README's runs score their baselines
    walked = []
    for words in readme_commands(text):
        line = " ".join(words)
        if any(line.startswith(skipped) or words[1:2] == [skipped] for skipped in NOT_WALKED):
            continue
        assert words[0].endswith("harness"), f"a README command this walk does not know how to run: {line}"
        args = words[1:]
        if args[0] == "run" and "--like" not in args:
            if "--tasks" in args:
                del args[args.index("--tasks") : args.index("--tasks") + 2]
            args += ["--backbone", str(backbone), "--tasks", str(small_sts_file)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, f"README: `{line}` failed:\n{result.output[-3000:]}"
        walked.append(args[0])
    assert walked.count("run") == 5 and {"compare", "leaderboard", "export"} <= set(walked)
    runs = {r["run_id"]: r["method"] for r in open_store(tmp_path / "harness.db").runs(statuses=None)}
    # the run numbers the README's comments give
    assert runs == {
        1: "autoregembed",
        2: "untrained-last",
        3: "echo",
        4: "untrained-mean",
        5: "infonce",
        6: "untrained-mean",
        7: "infonce",
        8: "infonce",
        9: "my-echo",
        10: "untrained-mean",
    }
    assert (tmp_path / "results").is_dir() and (tmp_path / "enc").is_dir()
