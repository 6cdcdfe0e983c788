"""What the run tests share: the triplets file a training run reads."""

from __future__ import annotations

import json

import pytest

from tests.training_fixtures import TRIPLETS


@pytest.fixture
def triplets_file(tmp_path):
    path = tmp_path / "triplets.jsonl"
    path.write_text(
        "\n".join(json.dumps({"anchor": t.query, "positive": t.pos, "negative": t.neg}) for t in TRIPLETS) + "\n"
    )
    return path
