"""Declared options: a default, a help text and the values a run accepts, checked in one place.

Every option of ``RunConfig`` and of every method's ``Config`` (built-in or plug-in) is made with
:func:`option`; :func:`check_values` enforces what it declares before anything is recorded, and
``harness methods`` shows it. Whatever an option declares, a float must be finite and a number
must lie within ``[-INT_LIMIT, INT_LIMIT]`` unless the option names its own upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import HarnessError

INT_LIMIT = 2**31 - 1
Check = Callable[[Any], "str | None"]  # a problem with the value, or None


@dataclass(frozen=True)
class Bounds:
    """What an option accepts: inclusive ``minimum``/``maximum``, exclusive ``above``/``below``,
    and ``check``, a function returning what is wrong with a value (None when it is fine)."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    check: Check | None = None
    rule: str = ""  # how ``check`` reads in ``harness methods``

    def describe(self) -> str:
        low = (
            f">= {_num(self.minimum)}"
            if self.minimum is not None
            else f"> {_num(self.above)}"
            if self.above is not None
            else ""
        )
        high = (
            f"<= {_num(self.maximum)}"
            if self.maximum is not None
            else f"< {_num(self.below)}"
            if self.below is not None
            else ""
        )
        return " and ".join(part for part in (low, high, self.rule) if part)

    def problem(self, value: Any) -> str | None:
        numbers = (
            [value] if _is_number(value) else [v for v in value if _is_number(v)] if isinstance(value, list) else []
        )
        for number in numbers:
            if isinstance(number, float) and not math.isfinite(number):
                return "must be a finite number"
            if self.maximum is None and self.below is None and abs(number) > INT_LIMIT:
                return f"is out of range (numbers are at most {INT_LIMIT} in magnitude)"
            if (
                (self.minimum is not None and number < self.minimum)
                or (self.above is not None and number <= self.above)
                or (self.maximum is not None and number > self.maximum)
                or (self.below is not None and number >= self.below)
            ):
                return f"must be {self.describe()}"
        return self.check(value) if self.check is not None else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def option(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,  # noqa: A002
    above: float | None = None,
    below: float | None = None,
    check: Check | None = None,
    rule: str = "",
) -> Any:
    """A documented dataclass field with the values it accepts; lists and dicts get a fresh copy
    per instance. ``above``/``below`` are exclusive bounds, ``check`` a custom test (say it in
    ``rule``)."""
    metadata = {"help": help, "bounds": Bounds(minimum, maximum, above, below, check, rule)}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def bounds_of(item: Any) -> Bounds:
    """The bounds a dataclass field declares (none for a plain field)."""
    return item.metadata.get("bounds", Bounds())


def check_values(config: Any, where: str, prefix: str = "") -> None:
    """Raise ``HarnessError`` naming ``where`` and the option (as ``prefix`` + name) for the first
    value its declaration refuses; then ask the config's own ``inconsistency(prefix)`` (if it has
    one) about values that are wrong only together."""
    for item in fields(config):
        value = getattr(config, item.name)
        problem = bounds_of(item).problem(value)
        if problem:
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            raise HarnessError(f"{where}: {prefix}{item.name}={shown} {problem}.")
    across = getattr(config, "inconsistency", None)
    problem = across(prefix) if callable(across) else None
    if problem:
        raise HarnessError(f"{where}: {problem}.")


TEXT_SLOT = "{text}"
POOL_START, POOL_END = "{pool}", "{/pool}"  # the pooled span of a template
TEMPLATE_RULE = "{text} once or more; {pool}...{/pool} may mark the pooled span"


def template_problem(template: Any) -> str | None:
    """What is wrong with a prompt template, or None: ``{text}`` at least once, and ``{pool}`` and
    ``{/pool}`` either both absent or once each, in that order (see :mod:`harness.encoder`)."""
    if not isinstance(template, str) or TEXT_SLOT not in template:
        return f"must contain {TEXT_SLOT}"
    starts, ends = template.count(POOL_START), template.count(POOL_END)
    if (starts, ends) not in ((0, 0), (1, 1)) or template.find(POOL_START) > template.find(POOL_END):
        return f"may mark one pooled span, {POOL_START} before {POOL_END}"
    return None


def template_option(default: str, help: str) -> Any:  # noqa: A002
    """A prompt template option: the text once or more, an optional pooled span."""
    return option(default, help, check=template_problem, rule=TEMPLATE_RULE)


def side_template_option(help: str, default: str = "") -> Any:  # noqa: A002
    """A retrieval side's template ('' = the symmetric template stands in)."""
    return option(
        default,
        help,
        check=lambda value: None if value == "" else template_problem(value),
        rule=f"'' or {TEMPLATE_RULE}",
    )


def text_slot_once(value: Any) -> str | None:
    """For templates of encoders that read the whole row (AutoRegEmbed's): ``{text}`` exactly once,
    no pooled span."""
    if isinstance(value, str) and value.count(TEXT_SLOT) == 1 and POOL_START not in value and POOL_END not in value:
        return None
    return "must contain {text} exactly once and no {pool} span"


def text_slot_once_or_empty(value: Any) -> str | None:
    """For a template that may be left empty (another template stands in): '' or ``{text}`` once."""
    return None if value == "" else text_slot_once(value)


def not_empty(value: Any) -> str | None:
    return None if value else "must not be empty"


def whole_numbers(text: str, option: str, example: str) -> list[int]:
    """``--option 1,2,3`` as whole numbers (their range is the config's to check); anything else
    is one message naming ``option``."""
    parts = [part.strip() for part in text.split(",")]
    bad = [part for part in parts if not (part.isascii() and part.isdecimal())]
    if bad:
        raise HarnessError(f"{option} {text!r}: {bad[0]!r} is not a whole number; give numbers like {example}.")
    return [int(part) for part in parts]


def distinct_dims(dims: Any) -> str | None:
    """A ``check`` for lists of embedding dims: no dim twice."""
    return "must not repeat a dim" if len(set(dims)) != len(dims) else None
