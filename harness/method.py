"""The method contract every plug-in implements.

A method turns a backbone into an encoder. It declares:

* ``Config``: a dataclass of its options, each with a default, a help text and the values it
  accepts (use :func:`option`: ``minimum``, ``maximum``, ``above``, ``below``, ``check``);
  users set them in a config file's ``[method_args]`` table or with ``--set method_args.NAME=VALUE``;
* ``stages()``: zero or more training stages, run in order on the shared training loop
  (untrained baselines have none);
* ``build_encoder()``: the encoder that mteb evaluates, built from the (trained) backbone.

A new method is one module plus one test, registered under the ``harness.methods`` entry-point
group (see ``methods/untrained.py`` and docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from harness.data.texts import check_data
from harness.encoder import PooledEncoder
from harness.errors import HarnessError
from harness.options import bounds_of, option

__all__ = ["DiagnosedStage", "Method", "MethodConfig", "PreparedStage", "Stage", "option", "set_only"]

if TYPE_CHECKING:
    from harness.encoder import Encoder, EncodeSettings
    from harness.model.attention import Attention
    from harness.model.backbones import Backbone


@dataclass
class MethodConfig:
    """Options of a method. Subclasses add fields made with :func:`option`."""

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str, str]]:
        """(name, default, help, accepted values) for every option, for ``harness methods``."""
        rows = []
        for f in fields(cls):
            if f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:
                default = None
            rows.append((f.name, default, f.metadata.get("help", ""), bounds_of(f).describe()))
        return rows


def set_only(**options: Any) -> dict[str, Any]:
    """A stage's ``overrides`` from its own options: those given a value (0 means: the method's)."""
    return {name: value for name, value in options.items() if value}


class Stage(Protocol):
    """One training stage of a method, run by the shared loop in :mod:`harness.training.loop`.

    The loop owns the optimiser, schedule, data order, accumulation, checkpoints and ranks; a stage
    only says which examples it trains on and how a micro-batch of them becomes a loss. A stage may
    also have ``overrides``: a dict of training options (steps, lr, dropout, ...) for this stage
    only, and ``data_kind``: what it reads from ``--train-data``, ``"triplets"`` (the default) or
    ``"texts"`` (:data:`harness.data.texts.DATA_KINDS`), checked before a run is recorded.
    """

    name: str

    def examples(self, source: str, seed: int) -> Sequence[Any]:
        """The stage's training examples, from ``--train-data`` (the method decides the kind)."""
        ...

    def loss(self, model: Any, tokenizer: Any, batch: Sequence[Any], config: Any) -> tuple[Any, int]:
        """(mean loss over this rank's ``batch``, non-pad tokens processed)."""
        ...


class PreparedStage(Stage, Protocol):
    """A stage that computes something per example from the model as it is when the stage begins
    (e.g. reference log-probabilities). The loop calls :meth:`begin` once and saves its result
    with the run's checkpoints, so a resumed stage reuses it instead of recomputing it."""

    def begin(self, model: Any, tokenizer: Any, examples: Sequence[Any], config: Any) -> Sequence[Any]: ...


class DiagnosedStage(Stage, Protocol):
    """A stage that measures itself when it ends, on data it held out of training; the loop
    records the numbers with the run (``harness show``) and shows the notes (warnings)."""

    def diagnose(self, model: Any, tokenizer: Any, config: Any) -> tuple[dict[str, float], list[str]]: ...


class Method:
    """Base class of every method; subclasses set ``Config`` and ``summary``."""

    Config: ClassVar[type[MethodConfig]] = MethodConfig
    summary: ClassVar[str] = ""
    #: named bundles of option values (``--set method_args.preset=NAME``); user options win
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether ``prepare`` adds trainable parameters of its own (``finetune=frozen`` trains only those)
    own_parameters: ClassVar[bool] = False
    #: how the backbone attends, in training and encoding alike (:mod:`harness.model.attention`):
    #: ``causal`` as it was trained, or ``bidirectional`` (every token sees its whole row). A method
    #: whose mode depends on its options makes this a property.
    attention: Attention = "causal"

    def __init__(self, config: MethodConfig) -> None:
        self.config = config

    def prepare(self, backbone: Backbone) -> None:
        """Add the method's own parameters or frozen copies to ``backbone`` (after adapters are
        attached, before training or encoding). Nothing by default."""

    def stages(self) -> Sequence[Stage]:
        """Training stages in order; none for untrained baselines."""
        return ()

    def baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The training-free run that isolates what this method adds: a method name and its
        ``method_args`` (the same template and pooling on the same backbone, nothing trained or
        added). ``harness run`` evaluates it in the same command (unless ``--no-baseline``) and
        closes with the two compared; None where the method is such a baseline itself."""
        return None

    def closing_notes(self) -> list[str]:
        """Lines printed after a run's results, e.g. what a preset's scores mean; none by default."""
        return []

    def check_inputs(self, train_data: str, seed: int) -> None:
        """Raise ``HarnessError`` now if the training inputs cannot be read; called before a run is
        recorded. By default ``--train-data`` is read once as each kind the stages declare
        (``Stage.data_kind``: triplets, the default, or texts; see :mod:`harness.data.texts`);
        override it when a method reads more (e.g. its own files)."""
        stages = self.stages()
        if stages:
            check_data(train_data, seed, {getattr(stage, "data_kind", "triplets") for stage in stages})

    def check_backbone(self, backbone: Backbone) -> None:
        """Raise ``HarnessError`` now if the options do not fit the loaded ``backbone`` (e.g. a
        layer it does not have); called before the run is recorded. Nothing by default."""

    def build_encoder(self, backbone: Backbone, settings: EncodeSettings) -> Encoder:
        raise NotImplementedError

    # -- harness export --model: the encoder as plain files, and back --
    def export_encoder(self, encoder: Encoder, model: Any, folder: Path) -> dict[str, Any]:
        """How ``encoder`` turns the exported ``model``'s states into vectors: its entry of
        ``harness-encoder.json`` (a ``kind`` and its settings). Called after LoRA adapters are
        merged into ``model`` and before it is saved in ``folder``: a method whose encoder has
        parts of its own writes them into ``folder`` here and removes them from ``model``. By
        default a :class:`~harness.encoder.PooledEncoder` exports its pooling; other encoders have
        no export format."""

        if not isinstance(encoder, PooledEncoder):
            raise HarnessError(
                f"{type(self).__name__} encodes with {type(encoder).__name__}, which has no export format."
            )
        return {"kind": "pooled", "pooling": encoder.pooling}

    @classmethod
    def load_exported(
        cls, model: Any, tokenizer: Any, spec: dict[str, Any], folder: Path, settings: EncodeSettings
    ) -> Encoder:
        """The encoder :meth:`export_encoder` described in ``spec``, over the exported model."""

        return PooledEncoder(
            model,
            tokenizer,
            pooling=spec["pooling"],
            settings=settings,
            template=spec["template"],
            document_template=spec.get("document_template"),
            query_template=spec.get("query_template"),
        )
