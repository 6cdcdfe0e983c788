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
    monkeypatch.setattr(backbones, "gguf_files", lambda wheel: [gguf])
    made = []

    def dequantise(spec, source, folder, stamp, status):
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


def _chunked_wheel(tmp_path, monkeypatch, sha256: str):
    """A GGUF wheel of two chunks (b"abc", b"def") in ``tmp_path``, whose dequantisation writes a
    marker file instead of reading a real GGUF."""
    from harness.model.aliases import BackboneSpec, GgufWheel

    for name, data in (("m.part00", b"abc"), ("m.part01", b"def")):
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(
        backbones, "_save_fp32", lambda gguf, staging: (staging / "joined").write_bytes(gguf.read_bytes())
    )
    wheel = GgufWheel(
        "fake", "fake", "1", "m.gguf", sha256, "0 s", (("fake_part1", "m.part00"), ("fake_part2", "m.part01"))
    )
    return BackboneSpec("fake", "fake/m.gguf", "gguf-wheel", gguf=wheel)


def test_a_chunked_wheel_is_joined_in_order_checked_and_only_its_fp32_copy_kept(tmp_path, monkeypatch):
    import hashlib

    spec = _chunked_wheel(tmp_path, monkeypatch, hashlib.sha256(b"abcdef").hexdigest())
    folder = tmp_path / "cache" / "fake"
    folder.parent.mkdir()
    backbones._dequantise(spec, [tmp_path / "m.part00", tmp_path / "m.part01"], folder, {"gguf": "x"}, None)
    assert (folder / "joined").read_bytes() == b"abcdef"
    assert sorted(p.name for p in folder.iterdir()) == ["harness-source.json", "joined"]  # the joined GGUF is not kept
    assert list(folder.parent.iterdir()) == [folder]  # no staging folder left


def test_a_chunked_wheel_whose_join_has_another_checksum_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    import hashlib

    import pytest

    from harness.errors import HarnessError

    spec = _chunked_wheel(tmp_path, monkeypatch, hashlib.sha256(b"defabc").hexdigest())  # the chunks swapped
    folder = tmp_path / "cache" / "fake"
    folder.parent.mkdir()
    with pytest.raises(
        HarnessError,
        match="fake's 2 chunks joined .* does not match the expected .*`pip install fake==1 --force-reinstall`",
    ):
        backbones._dequantise(spec, [tmp_path / "m.part00", tmp_path / "m.part01"], folder, {"gguf": "x"}, None)
    assert list(folder.parent.iterdir()) == []


def test_a_changed_later_chunk_makes_the_copy_again(tmp_path, monkeypatch):
    spec = _chunked_wheel(tmp_path, monkeypatch, "unused")
    chunks = [tmp_path / "m.part00", tmp_path / "m.part01"]
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backbones, "gguf_files", lambda wheel: chunks)
    made = []

    def dequantise(spec, files, folder, stamp, status):
        made.append(stamp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / backbones.MANIFEST).write_text(json.dumps(stamp))

    monkeypatch.setattr(backbones, "_dequantise", dequantise)
    backbones.gguf_folder(spec)
    backbones.gguf_folder(spec)
    chunks[1].write_bytes(b"defg")  # the second chunk reinstalled with other contents
    backbones.gguf_folder(spec)
    assert len(made) == 2 and [c["size"] for c in made[1]["chunks"]] == [3, 4]
