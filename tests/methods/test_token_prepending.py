"""Token prepending against a hand-run of the tiny model's layers, one text at a time: the
placeholder reads zeros at the input and the last token's state before each chosen layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.encoder import EncodeSettings
from harness.errors import HarnessError
from harness.options import check_values
from methods.token_prepending import TokenPrepending, TokenPrependingConfig
from tests.conftest import run_args
from tests.families import FAMILIES

TEXTS = ["the cat sat on the mat", "dog", "the bird flew over the house and the car drove down the road"]


class _Backbone:
    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.spec = type("Spec", (), {"name": "tiny"})()


def _by_hand(model, ids, place, layers, carry=True):
    """The last token's final state, running the decoder's layers one by one (causal SDPA, one
    row, no padding): zeros at the placeholder, then its state replaced before each layer in range."""
    decoder = model.get_decoder()
    with torch.no_grad():
        states = decoder.embed_tokens(torch.tensor([ids])).clone()
        states[0, place] = 0.0
        positions = torch.arange(len(ids)).unsqueeze(0)
        rotary = decoder.rotary_emb(states, position_ids=positions)
        for index, layer in enumerate(decoder.layers):
            if carry and layers[0] <= index < layers[1]:
                states = states.clone()
                states[0, place] = states[0, -1]
            states = layer(states, attention_mask=None, position_embeddings=rotary, position_ids=positions)
        return decoder.norm(states)[0, -1].numpy()


@pytest.mark.parametrize("layers", [(0, 2), (1, 2)])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_vectors_equal_a_hand_run_of_the_layers(family, layers):
    fam = FAMILIES[family]
    model, tokenizer = fam.model(), fam.tokenizer()
    config = TokenPrependingConfig(layers_from=layers[0], layers_to=layers[1])
    encoder = TokenPrepending(config).build_encoder(_Backbone(model, tokenizer), EncodeSettings(batch_size=3))
    got = encoder.encode(TEXTS)  # one padded batch of three rows
    for text, vector in zip(TEXTS, got):
        ids = tokenizer(config.template.replace("{pst}", tokenizer.eos_token).replace("{text}", text))["input_ids"]
        place = len(
            tokenizer("This sentence : ")["input_ids"]
        )  # the prefix's tokens (and BOS where the family adds one)
        assert ids[place] == tokenizer.eos_token_id and 0 < place < len(ids) - 1
        expected = _by_hand(model, ids, place, layers)
        np.testing.assert_allclose(vector, expected, atol=1e-5)
        assert np.abs(expected - _by_hand(model, ids, place, layers, carry=False)).max() > 1e-4  # carrying changes it


def test_the_placeholder_is_cut_from_the_text_as_an_added_token_is():
    """The template's literal EOS splits the string where the reference's added <PST> would."""
    tokenizer = FAMILIES["llama"].tokenizer()
    encoder = TokenPrepending(TokenPrependingConfig()).build_encoder(
        _Backbone(FAMILIES["llama"].model(), tokenizer), EncodeSettings()
    )
    (row,) = encoder.tokenize(["the cat"])
    place = list(row).index(tokenizer.eos_token_id)
    head = tokenizer("This sentence : ")["input_ids"]
    tail = tokenizer(' "the cat" means in one word:"', add_special_tokens=False)["input_ids"]
    assert list(row) == head + [tokenizer.eos_token_id] + tail and place == len(head)


def test_a_run_exports_and_reloads_its_vectors(tmp_path, tiny_llama_dir, small_sts_file):
    """End to end on the CLI: the run (its layer range checked against the backbone first), then
    ``export --model``, whose folder loads with the mechanism (harness and sentence-transformers)."""
    from sentence_transformers import SentenceTransformer
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.export.model import load_encoder
    from tests.export.test_model_export import _harness_vectors

    db = tmp_path / "h.db"
    args = run_args(db, tiny_llama_dir, small_sts_file, method="token-prepending")
    refused = CliRunner().invoke(app, args)
    assert (
        refused.exit_code == 2
        and "layers_to=7" in refused.output
        and "has 2 layers" in refused.output
        and not db.exists()
    )
    assert CliRunner().invoke(app, [*args, "--set", "method_args.layers_to=2"]).exit_code == 0
    out = tmp_path / "encoder"
    result = CliRunner().invoke(app, ["export", "1", "--model", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    expected = _harness_vectors(db, TEXTS)
    np.testing.assert_allclose(load_encoder(out).encode(TEXTS), expected, atol=1e-5, rtol=0)
    st = SentenceTransformer(str(out), device="cpu", trust_remote_code=True)  # the harness module, not plain pooling
    np.testing.assert_allclose(st.encode(TEXTS), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"template": 'This sentence : "{text}" means'}, "{pst} once, before the first {text}"),
        ({"template": 'This sentence : "{text}" {pst}'}, "{pst} once, before the first {text}"),
        ({"template": "{pst} {pool}{text}{/pool}"}, "no {pool} span"),
        ({"document_template": "Passage {text}"}, "{pst} once"),
        ({"layers_from": 3, "layers_to": 3}, "layers_from=3 must be below"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(HarnessError, match=message.replace("{", r"\{").replace("}", r"\}")):
        check_values(TokenPrependingConfig(**options), "method 'token-prepending'", prefix="method_args.")


def test_a_layer_range_beyond_the_backbone_is_refused():
    fam = FAMILIES["llama"]
    with pytest.raises(HarnessError, match="layers_to=7: tiny has 2 layers"):
        TokenPrepending(TokenPrependingConfig()).check_backbone(_Backbone(fam.model(), fam.tokenizer()))


def test_a_tokenizer_that_cannot_hold_the_placeholder_is_refused():
    fam = FAMILIES["llama"]
    tokenizer = fam.tokenizer()
    tokenizer.eos_token = None
    with pytest.raises(HarnessError, match="no EOS token"):
        TokenPrepending(TokenPrependingConfig(layers_to=2)).check_backbone(_Backbone(fam.model(), tokenizer))


def test_a_text_holding_the_eos_string_does_not_move_the_placeholder():
    """The placeholder is the template's EOS before the text; the text's own come later."""
    fam = FAMILIES["llama"]
    model, tokenizer = fam.model(), fam.tokenizer()
    encoder = TokenPrepending(TokenPrependingConfig(layers_from=0, layers_to=2)).build_encoder(
        _Backbone(model, tokenizer), EncodeSettings()
    )
    text = f"the cat {tokenizer.eos_token} sat"
    ids = tokenizer(f'This sentence : {tokenizer.eos_token} "{text}" means in one word:"')["input_ids"]
    place = len(tokenizer("This sentence : ")["input_ids"])
    np.testing.assert_allclose(encoder.encode([text])[0], _by_hand(model, ids, place, (0, 2)), atol=1e-5)
