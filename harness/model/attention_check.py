"""The guard of the attention mode: on the loaded model, the mode it was set to must hold."""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError
from harness.model.attention import BIDIRECTIONAL, CAUSAL, Attention, attention_mode, body, set_attention
from harness.model.packing import forward_rows


def attend(model: Any, mode: Attention, name: str, *, packed: bool = False) -> None:
    """Set ``model`` to attend in ``mode`` and check that it does (packed rows too, where the run
    packs them); the one way the harness readies a loaded backbone's attention."""
    set_attention(model, mode)
    check_attention(model, name, packed=packed)


def check_attention(model: Any, name: str, *, packed: bool = True) -> None:
    """Refuse (``HarnessError``) unless ``model`` runs in the mode it was set to, padded and (with
    ``packed``) packed.

    Two rows that differ only in their last token are run side by side: under bidirectional
    attention the first token's state must differ between them, under causal it must not. A
    shorter row beside either of them must be the same both times and the same as when run alone
    (rows never see each other, nor the padding of a padded batch).
    """
    import torch
    import transformers

    mode = attention_mode(model)
    stack = body(model)
    vocab = model.get_input_embeddings().weight.shape[0]
    first, second, other = [3, 4, 5, 6], [3, 4, 5, 7 % vocab], [8 % vocab, 9 % vocab, 10 % vocab]
    device = next(model.parameters()).device

    def states(rows: list[list[int]], pack: bool) -> torch.Tensor:
        ids = torch.tensor([t for row in rows for t in row], device=device)
        return forward_rows(stack, model.get_input_embeddings()(ids), [len(r) for r in rows], pack=pack).float()

    problems = []
    with torch.no_grad():
        alone = states([other], False)
        for pack in (False, True) if packed else (False,):
            one, two = states([first, other], pack), states([second, other], pack)
            scale = one.abs().max().clamp(min=1e-6)
            head = (one[0] - two[0]).abs().max() / scale
            after = max((one[4:] - two[4:]).abs().max(), (one[4:] - alone).abs().max()) / scale
            layout = "packed" if pack else "padded"
            if mode == BIDIRECTIONAL and head <= 1e-4:
                problems.append(f"{layout}: the first token did not see a later one")
            if mode == CAUSAL and head > 1e-4:
                problems.append(f"{layout}: the first token saw a later one")
            if after > 1e-4:
                problems.append(f"{layout}: a row saw another row or padding")
    if problems:
        raise HarnessError(
            f"attention: {name} was set to run {mode}, but {'; '.join(problems)} (transformers "
            f"{transformers.__version__}, attention {getattr(stack.config, '_attn_implementation', None)!r}). "
            "Its masks are not built as this harness expects; use a transformers version listed in docs/pitfalls.md."
        )
