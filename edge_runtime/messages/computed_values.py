"""Messages built from values the gateway computed itself, without pydantic's validation.

Why: a store day's close publishes thousands of alerts, each built inside the ledger
transaction, and validating one through pydantic cost about as much as serialising it, though
every value came from the engine's own arithmetic. :func:`computed` checks each value's type
and bounds against a plan derived once from the model's own fields (the schema keeps one
definition) and stores it as validation would have: an ``int`` in a float field as a float, a
whole float in an int field as an int, a time in UTC, a reason code as a ``ReasonCode``. Any
value it does not know to store exactly as validation would (another type, a bound not met, a
naive time, an unknown field, a required field missing) sends the whole message through
pydantic's validation instead, which coerces or raises as it always did. So the result, and
the bytes on the wire, are the same either way; what comes in from tills is still validated in
full (``edge_runtime.ingest``).

>>> from datetime import datetime, timedelta, timezone
>>> from edge_runtime.messages import StockoutAlert
>>> at = datetime(2026, 1, 7, 9, tzinfo=timezone(timedelta(hours=2)))
>>> a = computed(StockoutAlert, store_id="S1", sku="A", model_version="m", probability=1,
...              event_time=at, reason_codes=["atp_zero"])
>>> a.probability, a.event_time.isoformat(), a.reason_codes
(1.0, '2026-01-07T07:00:00+00:00', ['ATP_ZERO'])
>>> b = StockoutAlert(**{**a.model_dump(), "created_at": a.created_at})
>>> a.to_json() == b.to_json()
True
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from annotated_types import Ge, Le
from pydantic import AfterValidator, AwareDatetime
from pydantic.fields import FieldInfo

from edge_runtime.messages.envelope import Message
from edge_runtime.messages.reason_codes import ReasonCode

M = TypeVar("M", bound=Message)
_set = object.__setattr__
_EVIDENCE_TYPES = frozenset({float, int, str, bool, type(None)})


class _Validate(Exception):
    """A value this module does not store as validation would: validate the message."""


Check = Callable[[Any], Any]


def _bounded(metadata: list) -> tuple[float, float]:
    lo, hi = -math.inf, math.inf
    for m in metadata:
        if isinstance(m, Ge):
            lo = m.ge
        elif isinstance(m, Le):
            hi = m.le
    return lo, hi


def _float_check(lo: float, hi: float) -> Check:
    bounded = (lo, hi) != (-math.inf, math.inf)

    def check(v: Any) -> float:
        t = type(v)
        if t is int:
            v = float(v)
        elif t is not float:
            raise _Validate
        if bounded and not lo <= v <= hi:  # NaN fails too: validation says why
            raise _Validate
        return v

    return check


def _int_check(lo: float, hi: float) -> Check:
    def check(v: Any) -> int:
        t = type(v)
        if t is float and v.is_integer():
            v = int(v)
        elif t is not int:
            raise _Validate
        if not lo <= v <= hi:
            raise _Validate
        return v

    return check


def _str_check(v: Any) -> str:
    if type(v) is not str:
        raise _Validate
    return v


def _literal_check(allowed: frozenset[str]) -> Check:
    def check(v: Any) -> str:
        if type(v) is not str or v not in allowed:
            raise _Validate
        return v

    return check


def _time_check(v: Any) -> datetime:
    if type(v) is not datetime or v.utcoffset() is None:
        raise _Validate
    return v.astimezone(UTC)


def _reasons_check(v: Any) -> list[ReasonCode]:
    if type(v) is not list:
        raise _Validate
    members = ReasonCode._value2member_map_
    out = []
    for code in v:
        if type(code) is not ReasonCode and (
            type(code) is not str or (code := members.get(code.upper())) is None
        ):
            raise _Validate
        out.append(code)
    return out


def _evidence_check(v: Any) -> dict:
    if type(v) is not dict:
        raise _Validate
    for key, value in v.items():
        if type(key) is not str or type(value) not in _EVIDENCE_TYPES:
            raise _Validate
    return dict(v)


def _is_utc_time(annotation: Any, metadata: list) -> bool:
    if typing.get_origin(annotation) is Annotated:
        annotation, *more = typing.get_args(annotation)
        metadata = [*metadata, *more]
    return annotation is AwareDatetime and any(isinstance(m, AfterValidator) for m in metadata)


def _check_for(field: FieldInfo) -> Check | None:
    """How to store a value of ``field`` as validation would; None: always validate."""
    ann, meta = field.annotation, field.metadata
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional and len(args) == 2:
        ann = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(ann), typing.get_args(ann)
    elif optional:
        return None
    if _is_utc_time(ann, meta):
        check = _time_check
    elif ann is float:
        check = _float_check(*_bounded(meta))
    elif ann is int:
        check = _int_check(*_bounded(meta))
    elif ann is str and not meta:
        check = _str_check
    elif origin is Literal and all(type(a) is str for a in args):
        check = _literal_check(frozenset(args))
    elif origin is list and typing.get_origin(args[0]) is Annotated:
        check = _reasons_check if typing.get_args(args[0])[0] is ReasonCode else None
    elif ann == dict[str, float | int | str | bool | None]:
        check = _evidence_check
    else:
        return None
    if not optional:
        return check
    return lambda v: None if v is None else check(v)


class _Plan:
    """What :func:`computed` needs of one message class, derived once from its fields."""

    def __init__(self, cls: type[Message]):
        fields = cls.model_fields
        self.checks = {name: _check_for(f) for name, f in fields.items()}
        self.required = frozenset(name for name, f in fields.items() if f.is_required())
        self.defaults = {
            name: f.get_default(call_default_factory=False) for name, f in fields.items()
        }
        self.factories = {
            name: f.default_factory for name, f in fields.items() if f.default_factory is not None
        }


@cache
def _plan(cls: type[Message]) -> _Plan:
    return _Plan(cls)


def computed(cls: type[M], **fields: Any) -> M:
    """``cls(**fields)``, the same message, without validating values whose types and bounds
    already are what validation would store (see the module docstring)."""
    plan = _plan(cls)
    if not plan.required <= fields.keys():
        return cls(**fields)
    values = plan.defaults.copy()
    checks = plan.checks
    try:
        for name, value in fields.items():
            values[name] = checks[name](value)
    except (KeyError, TypeError, _Validate):  # an unknown field, or one always validated
        return cls(**fields)
    for name, factory in plan.factories.items():
        if name not in fields:
            values[name] = factory()
    out = cls.__new__(cls)
    _set(out, "__dict__", values)
    _set(out, "__pydantic_extra__", None)
    _set(out, "__pydantic_fields_set__", set(fields))
    _set(out, "__pydantic_private__", None)
    return out
