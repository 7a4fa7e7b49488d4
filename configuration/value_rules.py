"""The checks a single setting's value must pass, as annotated types every settings model uses:
a TCP port, a count of at least n, a non-negative or positive quantity, a number in a range,
an existing file or directory. Each carries the words the configuration reference prints
(``rule_text``) and fails with what to use instead.

>>> from pydantic import BaseModel
>>> class Queue(BaseModel):
...     port: Port = 1883
...     inflight: AtLeast1 = 10
>>> Queue(port="1884").port
1884
>>> Queue(inflight=0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Queue
inflight
  Value error, 0; use 1 or more ...
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from configuration.command_options import port_number


@dataclass(frozen=True)
class Rule:
    """A check with its description (``says``) and the fix named when a value fails it
    (``{value}`` in ``fix`` places the value; else the message is ``value; fix``).

    >>> at_least_2 = Rule(">= 2", lambda v: v >= 2, "use 2 or more")
    >>> at_least_2(3), at_least_2(None)  # None: an unset optional value is not checked
    (3, None)
    >>> try:
    ...     at_least_2(1)
    ... except ValueError as err:
    ...     print(err)
    1; use 2 or more
    """

    says: str
    holds: Callable[[Any], bool]
    fix: str

    def __call__(self, value: Any) -> Any:
        if value is not None and not self.holds(value):
            fix = self.fix
            raise ValueError(fix.format(value=value) if "{value}" in fix else f"{value}; {fix}")
        return value


def rule_text(metadata: list[Any]) -> str:
    """What the rules among a field's metadata allow, for the reference ('' when none)."""
    texts = [m.func.says for m in metadata if isinstance(getattr(m, "func", None), Rule)]
    texts += [m.func.__doc__ or "" for m in metadata if getattr(m, "func", None) is _port]
    return "; ".join(t for t in texts if t)


def _port(value: Any) -> int:
    """1..65535"""
    try:
        return port_number(value)
    except argparse.ArgumentTypeError as err:
        raise ValueError(str(err)) from None


def _finite(low: float, high: float) -> Callable[[float], bool]:
    return lambda v: math.isfinite(v) and low < v < high


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()


def _is_dir(path: str) -> bool:
    return Path(path).expanduser().is_dir()


Port = Annotated[int, BeforeValidator(_port)]
AtLeast1 = Annotated[int, AfterValidator(Rule(">= 1", lambda v: v >= 1, "use 1 or more"))]
NonNegativeInt = Annotated[int, AfterValidator(Rule(">= 0", lambda v: v >= 0, "use 0 or more"))]
NonNegative = Annotated[float, AfterValidator(Rule(">= 0", lambda v: v >= 0, "use 0 or more"))]
Positive = Annotated[float, AfterValidator(Rule("> 0", lambda v: v > 0, "use a positive number"))]
PositiveFinite = Annotated[
    float,
    AfterValidator(Rule("> 0, finite", _finite(0, 1e9), "use a positive finite number")),
]
Probability = Annotated[
    float, AfterValidator(Rule("in (0, 1]", lambda v: 0 < v <= 1, "use a number in (0, 1]"))
]
OpenProbability = Annotated[
    float, AfterValidator(Rule("in (0, 1)", lambda v: 0 < v < 1, "use a number in (0, 1)"))
]
ExistingFile = Annotated[
    str | None,
    AfterValidator(Rule("an existing file", _is_file, "{value} does not exist or is not a file")),
]


def existing_dir(fix: str) -> Any:
    """An optional directory that must exist, failing with ``fix``."""
    return Annotated[str | None, AfterValidator(Rule("an existing directory", _is_dir, fix))]
