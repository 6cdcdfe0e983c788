"""What the run tests share: the triplets file a training run reads and the template it encodes with."""

from __future__ import annotations

import json

import pytest

from tests.training_fixtures import TRIPLETS

TEMPLATE = "method_args.template='this sentence : {text}'"


@pytest.fixture
def triplets_file(tmp_path):
    path = tmp_path / "triplets.jsonl"
    path.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    return path
