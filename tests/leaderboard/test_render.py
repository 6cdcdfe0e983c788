"""Tables at 80 columns (leaderboard/render.py and the listings): no cell cut to "…", the columns that
say which run a row is never folded (or folded whole), and what does not fit named."""

from __future__ import annotations

from tests.conftest import cli_ok, run_args


def _column(table: str, header: str) -> str:
    """The text of one column of a rendered table, its folded lines joined."""
    lines = table.splitlines()
    head = next(i for i, line in enumerate(lines) if f" {header} " in line)
    start = lines[head].index(f" {header} ") + 1
    after = lines[head][start + len(header) :]
    end = start + len(header) + len(after) - len(after.lstrip()) - 1 if after.strip() else None
    rows = lines[head + 2 :]
    rows = rows[
        : next((i for i, line in enumerate(rows) if not line.strip()), len(rows))
    ]  # the table ends at a blank line
    return "".join(line[start:end].strip() for line in rows)


def test_tables_are_readable_at_80_columns(tmp_path, tiny_llama_dir, small_sts_file, monkeypatch):
    import shutil

    from rich.cells import cell_len

    from harness.cli.app import console

    monkeypatch.setattr(console, "width", 80)
    backbone = tmp_path / "a-tiny-llama-backbone-folder-with-a-long-name"
    shutil.copytree(tiny_llama_dir, backbone)
    db = tmp_path / "h.db"
    second = tmp_path / "second-sts-file-with-a-long-name.tsv"
    second.write_text(small_sts_file.read_text())
    methods = ["untrained-mean", "untrained-last", "prompteol"]
    for method in methods:
        cli_ok(*run_args(db, backbone, small_sts_file, "--tasks", str(second), method=method))

    def shown(*args: str) -> str:
        out = cli_ok(*args).stdout
        assert "…" not in out and max(map(cell_len, out.splitlines())) <= 80, out
        return out

    for command in (
        ["runs"],
        ["compare"],
        ["compare", "--diff"],
        ["leaderboard"],
        ["methods"],
        ["backbones"],
        ["tasks"],
    ):
        out = (
            shown(*command, "--db", str(db))
            if command[0] not in ("methods", "backbones", "tasks")
            else shown(*command)
        )
        if command[0] in ("runs", "compare", "leaderboard", "methods"):
            assert all(any(m in line for line in out.splitlines()) for m in methods), (command, out)  # never folded
        if command[0] in ("runs", "leaderboard"):
            assert _column(out, "Backbone") == str(backbone) * len(methods), command  # folded, but whole
    board = shown("leaderboard", "--db", str(db))
    assert second.stem in board.replace("\n", "") or f"not shown at this width: {second.stem}" in " ".join(
        board.split()
    )
    costs = shown("leaderboard", "--efficiency", "--db", str(db))
    assert (
        "Evaluation cost over the 2 ranked task(s)" in costs
        and "Memo %" in costs
        and "Cache %" in costs
        and "22.7K" in costs
    )
    diff = shown("compare", "--diff", "--db", str(db))
    assert "method_args:" in diff and any(line.strip().startswith("template") for line in diff.splitlines())
    one = shown("methods", "infonce")
    assert "temperature" in one and "0.05" in one and "> 0" in one
    listing = shown("methods")
    assert (
        "temperature" not in listing
        and len([line for line in listing.splitlines() if line.strip().startswith(tuple(methods))]) == 3
    )
