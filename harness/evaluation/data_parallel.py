"""Data-parallel encoding: the texts mteb asks for, split across the ranks of a process group.

Every rank runs the same mteb evaluation and asks :class:`ShardedEncoder` for the same texts. Each
rank tokenizes all of them (as one process would), orders them longest first, and encodes one
contiguous slice of that order, the slices near-equal in count. The ranks then say whether their
slice failed (:func:`harness.ranks.agree`: if one did, every rank raises
:class:`~harness.ranks.RankFailed`), and gather the vectors, so every rank holds the whole array
in input order and computes the same scores.

Anything in front of this encoder that decides which texts to encode (a memo, a cache read from
disk) must decide the same on every rank; :attr:`ShardedEncoder.distributed` says it must, and
:func:`harness.ranks.broadcast_from_main` gives every rank rank 0's answer. Ranks that ask for
different texts are refused (:class:`~harness.ranks.RankFailed`), never left to hang.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from harness import faults, ranks
from harness.encoder import ProgressHook, TokenEncoder
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.encoder import Encoder


GATHER_ROWS = 4096  # rows of each rank's shard per all-gather: 4096 x 4096 dims x 4 B = 64 MiB a rank


def shard_bounds(count: int, world_size: int) -> list[int]:
    """Where each rank's slice of ``count`` items starts (and the last ends): sizes differ by one at most."""
    return [count * rank // world_size for rank in range(world_size + 1)]


def _digest(texts: Sequence[str], prompt_type: str | None) -> str:
    digest = hashlib.blake2b(str(prompt_type).encode(), digest_size=16)
    for text in texts:
        digest.update(len(text).to_bytes(8, "little"))
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class ShardedEncoder:
    """The :class:`~harness.encoder.Encoder` interface over a :class:`~harness.encoder.TokenEncoder`,
    each rank encoding its shard. ``texts_per_rank`` and ``tokens_per_rank`` count what each rank
    encoded, as it reported; ``texts_encoded`` and ``tokens_encoded`` are their sums."""

    distributed = True  # every rank must ask for the same texts, in the same order

    def __init__(self, encoder: Encoder) -> None:
        if not isinstance(encoder, TokenEncoder):
            raise HarnessError(
                f"data-parallel evaluation shards texts by their tokens; the method's encoder "
                f"({type(encoder).__name__}) is no TokenEncoder: evaluate it with one process."
            )
        info = ranks.world()
        self.encoder = encoder
        self.rank, self.world_size = info.rank, info.world_size
        self.embed_dim, self.max_length = encoder.embed_dim, encoder.max_length
        self.texts_per_rank = [0] * self.world_size
        self.tokens_per_rank = [0] * self.world_size
        self.progress: ProgressHook | None = (
            None  # called with texts done, this rank's as they go, the others' once gathered
        )

    @property
    def texts_encoded(self) -> int:
        return sum(self.texts_per_rank)

    @property
    def tokens_encoded(self) -> int:
        return sum(self.tokens_per_rank)

    def encode(self, texts: Sequence[str], *, prompt_type: str | None = None) -> np.ndarray:
        rows = self.encoder.side_tokenizer(prompt_type)(texts) if texts else []
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]), reverse=True)
        bounds = shard_bounds(len(rows), self.world_size)
        mine = order[bounds[self.rank] : bounds[self.rank + 1]]
        texts_before, tokens_before = self.encoder.texts_encoded, self.encoder.tokens_encoded
        self.encoder.progress = self.progress
        local, error = np.zeros((0, self.embed_dim), dtype=np.float32), None
        try:
            faults.point("encode")
            local = self.encoder.encode_rows([rows[i] for i in mine])
        except Exception as exc:  # every rank learns of it below, before any waits on this rank's vectors
            error = exc
        done = (self.encoder.texts_encoded - texts_before, self.encoder.tokens_encoded - tokens_before)
        reports = ranks.agree(error, (_digest(texts, prompt_type), *done))
        if len({digest for digest, _, _ in reports}) > 1:
            raise ranks.RankFailed(
                f"the ranks asked for different texts to encode ({len(texts)} texts on rank {self.rank}): "
                "whatever chooses them (a memo, a cache) must choose the same on every rank."
            )
        for rank, (_, count, tokens) in enumerate(reports):
            self.texts_per_rank[rank] += count
            self.tokens_per_rank[rank] += tokens
        if self.progress:
            self.progress(sum(count for rank, (_, count, _) in enumerate(reports) if rank != self.rank))
        out = np.zeros((len(rows), self.embed_dim), dtype=np.float32)
        if rows:
            out[order] = self._gathered(local, bounds)
        return out

    def _gathered(self, local: np.ndarray, bounds: list[int]) -> np.ndarray:
        """Every rank's vectors, in rank order (their shards' order), gathered ``GATHER_ROWS`` rows
        of each shard at a time (padded to the largest shard; on the rank's GPU under NCCL), so a
        long corpus never sits whole on a device: the gathered vectors go to host memory."""
        import torch
        import torch.distributed as dist

        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        out = np.zeros((sum(sizes), self.embed_dim), dtype=np.float32)
        device = ranks.collective_device()
        for start in range(0, max(sizes), GATHER_ROWS):
            rows = min(GATHER_ROWS, max(sizes) - start)
            piece = torch.zeros((rows, self.embed_dim), dtype=torch.float32, device=device)
            mine = local[start : start + rows]
            piece[: len(mine)] = torch.from_numpy(np.ascontiguousarray(mine)).to(device)
            parts = [torch.empty_like(piece) for _ in range(self.world_size)]
            dist.all_gather(parts, piece)
            for part, first, size in zip(parts, bounds, sizes):
                take = max(0, min(rows, size - start))
                out[first + start : first + start + take] = part[:take].cpu().numpy()
        return out
