"""Small deterministic training set-ups shared by the training tests and tests/training/dist_grads.py."""

from __future__ import annotations

from harness.data.train_data import Triplet
from methods.infonce import ContrastiveStage, InfoNCEConfig
from tests.conftest import make_tiny_llama, make_tokenizer

TRIPLETS = [
    Triplet("the cat sat on the mat", "a cat sat on a mat", "the car drove down the road"),
    Triplet("the dog ran in the park", "a dog ran in a park", "the sky is blue"),
    Triplet("the bird flew over the house", "a bird flew over a house", "the man ate food"),
    Triplet("the man read a book", "a man read a book", "rain falls"),
    Triplet("the woman drank water", "a woman drank water", "the sun shines"),
    Triplet("the grass is green", "green grass", "the dog sat"),
    Triplet("the sun shines", "sun shines on the park", "the cat ran"),
    Triplet("the car drove down the road", "a car drove down a road", "the bird sat"),
]


def write_triplets(path):
    """TRIPLETS as a JSON-lines file."""
    import json

    path.write_text("".join(json.dumps({"query": t.query, "pos": t.pos, "neg": t.neg}) + "\n" for t in TRIPLETS))
    return path


def write_ic_triplets(path):
    """15 triplets (JSON lines) whose queries and positives are 30 distinct texts: enough for an IC
    stage to hold 3 out for its diagnostics."""
    import json

    subjects = ["the cat", "the dog", "the bird", "the man", "the woman"]
    actions = ["sat on the mat", "ran in the park", "flew over the house"]
    rows = [
        {"query": f"{s} {a}", "pos": f"{s} {a} in the sun", "neg": "rain falls"} for s in subjects for a in actions
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def lora_model(seed: int = 0, dropout: float = 0.0):
    """The tiny Llama with LoRA adapters attached the way the training loop attaches them."""
    import torch

    from harness.model.backbones import Backbone, BackboneSpec
    from harness.training.parameters import prepare_model

    model = make_tiny_llama(seed)
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), model, make_tokenizer())
    torch.manual_seed(seed + 1)
    config = InfoNCEConfig(lora_r=4, lora_alpha=8, lora_dropout=dropout)
    prepare_model(backbone, config)
    generator = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():  # non-zero B, so every adapter weight gets a gradient
        for name, parameter in backbone.model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return backbone.model, backbone.tokenizer


def stage_for(*, in_batch: bool, batch_size: int, grad_accum: int = 1, **kwargs):
    config = InfoNCEConfig(
        in_batch=in_batch,
        batch_size=batch_size,
        grad_accum=grad_accum,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        temperature=0.1,
        template="this sentence : {text}",
        **kwargs,
    )
    return ContrastiveStage(), config


def sharded_run(out, *, engine: str, method: str, world_size: int, resume: bool = False, **options) -> dict:
    """Full fine-tune of the tiny Llama on TRIPLETS with ``engine`` (``options``: more training
    options, e.g. sharding_config); the global batch is 8 whatever ``world_size`` is; ``resume``
    continues from the folder's checkpoint. Returns (rank 0) the step losses and the final
    checkpoint's weights."""
    from pathlib import Path

    import torch

    from harness.model.backbones import Backbone, BackboneSpec
    from harness.training.checkpoints import latest_checkpoint
    from harness.training.loop import TrainJob, run_stages
    from harness.training.parameters import prepare_model
    from harness.training.train_config import Hooks
    from methods.autoregembed import AutoRegEmbed, AutoRegEmbedConfig

    class Record(Hooks):
        def __init__(self) -> None:
            self.losses: list[tuple[str, int, float]] = []

        def steps(self, stage, logs) -> None:
            self.losses.extend((log.stage, log.step, log.loss) for log in logs)

    out = Path(out)
    triplets = out / "triplets.jsonl"
    if not triplets.exists():
        write_triplets(triplets)
    common = dict(
        finetune="full",
        batch_size=8 // world_size,
        lr=1e-3,
        checkpoint_every=1,
        max_length=32,
        sharding=engine,
        **options,
    )
    if method == "infonce":
        config = InfoNCEConfig(steps=3, in_batch=True, temperature=0.1, template="this sentence : {text}", **common)
        stages = [ContrastiveStage()]
        prepare = None
    elif method == "nv-embed":  # a method with a module of its own outside the decoder: the latent-attention layer
        from methods.nv_embed import NVEmbed, NVEmbedConfig

        config = NVEmbedConfig(
            steps=3, in_batch=True, temperature=0.1, latents=4, latent_heads=2, latent_head_dim=8, **common
        )
        stages, prepare = [ContrastiveStage()], NVEmbed(config).prepare
    else:
        config = AutoRegEmbedConfig(slots=2, ic_steps=2, cda_steps=2, **common)
        runner = AutoRegEmbed(config)
        stages, prepare = runner.stages(), runner.prepare
    backbone = Backbone(BackboneSpec("tiny", "tiny", "local"), make_tiny_llama(0), make_tokenizer())
    torch.manual_seed(0)
    prepare_model(backbone, config)
    if prepare is not None:
        prepare(backbone)
    hooks = Record()
    run_stages(backbone, stages, config, TrainJob(str(triplets), 0, out / "run", resume=resume), hooks)
    weights = torch.load(latest_checkpoint(out / "run") / "trainable.pt", weights_only=True)
    return {"losses": hooks.losses, "weights": weights}


#: (pooling, hard_negatives) of the GradCache equality tests, one and two processes
GRAD_CACHE_CASES = [("mean", True), ("mean", False), ("last", True), ("last", False)]
# every loss option and Matryoshka dims at once: the wrappers compose with GradCache and the gathers
IMPROVED_LOSS = {
    "query_negatives": True,
    "document_negatives": True,
    "symmetric": True,
    "false_negative_margin": 0.1,
    "matryoshka_dims": [8, 16, 32],
    "matryoshka_weights": [1.0, 0.5, 0.25],
}


def contrastive_grads(
    triplets,
    *,
    pooling: str,
    hard_negatives: bool,
    mini_batch: int = 0,
    dropout: float = 0.0,
    seed: int = 0,
    checkpointing: bool = False,
    **options,
):
    """(loss, trainable gradients) of one InfoNCE step with in-batch negatives on ``triplets``
    (gradients averaged over ranks when a process group is up); dropout masks drawn from ``seed``;
    ``checkpointing``: the loop's activation checkpointing on; ``options``: more InfoNCE options."""
    import torch

    from harness.training import distributed
    from harness.training.parameters import enable_checkpointing

    model, tokenizer = lora_model(dropout=dropout)
    if checkpointing:
        enable_checkpointing(model, lora=True)
    model.train(dropout > 0 or checkpointing)
    stage, config = stage_for(
        in_batch=True,
        batch_size=len(triplets),
        pooling=pooling,
        hard_negatives=hard_negatives,
        mini_batch=mini_batch,
        **options,
    )
    torch.manual_seed(seed)
    loss, _ = stage.loss(model, tokenizer, triplets, config)
    loss.backward()
    distributed.average_gradients([p for p in model.parameters() if p.requires_grad])
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
