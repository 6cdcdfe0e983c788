"""The cached fp32 copy of the offline backbone."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

from harness.model import backbones


def test_processes_starting_together_make_the_smollm2_copy_once(tmp_path, monkeypatch):
    """Two runs started at once on a fresh machine used to both dequantise, and the second's
    clean-up deleted files under the first (FileNotFoundError). One makes it now; the rest wait."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"gguf")
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backbones, "_smollm2_gguf", lambda: gguf)
    made = []

    def dequantise(source, folder, stamp, status):
        made.append(folder)
        time.sleep(0.3)  # long enough for every other caller to arrive meanwhile
        folder.mkdir(parents=True)
        (folder / backbones.MANIFEST).write_text(json.dumps(stamp))

    monkeypatch.setattr(backbones, "_dequantise", dequantise)
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: backbones._smollm2_folder(), range(4)))
    assert len(made) == 1
    assert set(folders) == {made[0]}
    assert json.loads((made[0] / backbones.MANIFEST).read_text())["size"] == 4
    assert backbones._smollm2_folder() == made[0] and len(made) == 1  # later calls reuse it
