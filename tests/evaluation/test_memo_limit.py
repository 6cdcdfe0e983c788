"""The run's memo keeps at most its limit of vectors, least recently used first out, and a call
larger than the memo still gets every vector, in order."""

from __future__ import annotations

import numpy as np

from harness.evaluation.mteb_adapter import MtebEncoder


class Counting:
    """An encoder whose vector of a text is its length, counting what it encodes."""

    embed_dim = 2

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts, *, prompt_type=None):
        self.encoded.extend(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def _batches(texts):
    return [{"text": texts}]


def test_the_memo_keeps_its_limit_and_drops_the_least_recently_used():
    encoder = Counting()
    adapter = MtebEncoder(encoder, meta=None)
    adapter.memo_limit = 3
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    got = adapter.encode(
        _batches(texts + texts[:2])
    )  # more distinct texts than the memo holds, repeats within the call
    np.testing.assert_array_equal(got[:, 0], [len(t) for t in texts + texts[:2]])
    assert encoder.encoded == texts and len(adapter._memo) == 3
    adapter.encode(_batches(["ccc"]))  # in the memo: not encoded again, and now the most recent
    adapter.encode(_batches(["ffffff"]))  # pushes out the least recently used: dddd
    adapter.encode(_batches(["ccc", "eeeee", "dddd"]))
    assert encoder.encoded == [*texts, "ffffff", "dddd"]
    assert len(adapter._memo) == 3 and (adapter.requested, adapter.computed) == (7 + 1 + 1 + 3, 5 + 1 + 1)
