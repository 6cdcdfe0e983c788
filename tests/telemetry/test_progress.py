"""Progress of training and encoding (harness/telemetry/progress.py): a bar with a total and the time
left on a terminal; plain lines when piped, at least once a minute while encoding and every tenth of
a training stage, closed by where the checkpoints are."""

from __future__ import annotations

import subprocess

from tests.conftest import HARNESS, harness_env, infonce_run_args, run_untrained


def test_a_piped_evaluation_says_what_it_encodes(tmp_path, tiny_llama_dir, small_sts_file):
    out = run_untrained(tmp_path / "h.db", tiny_llama_dir, small_sts_file).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if f"evaluating {small_sts_file.stem}" in line)
    assert "24 texts to encode" in lines[start]  # 12 pairs, two sides each
    assert any(line.strip().startswith(f"{small_sts_file.stem}: cosine_spearman") for line in lines[start + 1 :])


def test_piped_encoding_speaks_at_least_once_a_minute(monkeypatch):
    import io

    from rich.console import Console

    from harness.telemetry import progress

    clock = iter([0.0, 30.0, 61.0, 62.0, 130.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    buffer = io.StringIO()
    with progress.encoding_progress(Console(file=buffer, force_terminal=False, width=80), "STSB", 400) as advance:
        for _ in range(4):
            advance(50)
    lines = buffer.getvalue().splitlines()
    # start at 0 s; 30 s: quiet; 61 s: a line (100 done, ~1.6 texts/s); 62 s: quiet; 130 s: a line
    assert lines[0] == "  evaluating STSB: 400 texts to encode"
    assert lines[1].startswith("  STSB: 100/400 texts encoded (2 texts/s, about 183 s left)")
    assert lines[2].startswith("  STSB: 200/400 texts encoded") and len(lines) == 3


def test_the_terminal_bar_has_a_total_and_the_time_left():
    import io

    from rich.console import Console

    from harness.telemetry import progress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with progress.encoding_progress(console, "STSB", 400) as advance:
        advance(100)
        console.file.flush()
    shown = buffer.getvalue()
    assert "/400" in shown and "left" in shown


def test_piped_output_gets_plain_progress_lines_and_the_checkpoint_folder(
    tmp_path, tiny_llama_dir, triplets, small_sts_file
):
    args = infonce_run_args(
        tmp_path / "h.db", tiny_llama_dir, triplets, small_sts_file, tmp_path / "runs", "method_args.steps=20"
    )
    done = subprocess.run([*HARNESS, *args], env=harness_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    progress = [line.split()[2] for line in done.stdout.splitlines() if line.strip().startswith("contrastive step")]
    assert progress == ["1/20", "2/20", "4/20", "6/20", "8/20", "10/20", "12/20", "14/20", "16/20", "18/20", "20/20"]
    (folder,) = (tmp_path / "runs").iterdir()
    assert f"Checkpoints: {folder}" in done.stdout and "harness delete 1" in done.stdout
