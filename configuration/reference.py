"""The configuration reference, generated from the settings models themselves: every section and
key with its variable, type, default, allowed values and meaning, so the page cannot drift from
what the processes accept (a test compares the committed page with a fresh rendering).

>>> from pydantic import Field
>>> class Broker(Section):
...     port: int = Field(1883, ge=1, description="Broker port.")
>>> class Demo(LayeredSettings):
...     broker: Broker = Broker()
>>> _ = Demo.model_rebuild()
>>> print(section_table(Demo, "broker"))
| key | variable | type | default | allowed | meaning |
| --- | --- | --- | --- | --- | --- |
| `port` | `SHELFCAST_BROKER_PORT` | int | `1883` | >= 1 | Broker port. |
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from configuration.layered_settings import LayeredSettings, Section
from configuration.value_rules import rule_text
from configuration.variables import OTHER_VARIABLES


def _type_name(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(args[0])
    if args:  # a union with None: the key may be left unset
        return " or ".join(_type_name(a) for a in args) + " (optional)"
    return getattr(annotation, "__name__", str(annotation))


def _allowed(info: FieldInfo) -> str:
    words = []
    for m in info.metadata:
        for kind, sign in ((annotated_types.Ge, ">="), (annotated_types.Gt, ">")):
            if isinstance(m, kind):
                words.append(f"{sign} {getattr(m, kind.__name__.lower())}")
        for kind, sign in ((annotated_types.Le, "<="), (annotated_types.Lt, "<")):
            if isinstance(m, kind):
                words.append(f"{sign} {getattr(m, kind.__name__.lower())}")
    rules = rule_text(info.metadata)
    return "; ".join([*words, rules] if rules else words)


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=False)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def section_table(model: type[LayeredSettings], section: str) -> str:
    """A markdown table of one section's keys."""
    rows = [
        "| key | variable | type | default | allowed | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    part: type[Section] = model.sections()[section]
    for key, info in part.model_fields.items():
        cells = (
            f"`{key}`",
            f"`{model.env_name(section, key)}`",
            _type_name(info.annotation),
            _default(info),
            _allowed(info),
            info.description or "",
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def render(processes: Sequence[tuple[str, type[LayeredSettings]]], intro: str) -> str:
    """The whole page: ``intro``, then each process's sections (a section shared with a
    process already listed is named, not repeated), then the other variables."""
    out = [intro.strip(), ""]
    done: dict[str, str] = {}
    for process, model in processes:
        out += [f"## `{process}`", ""]
        shared = [s for s in model.sections() if s in done]
        if shared:
            names = ", ".join(f"`[{s}]`" for s in shared)
            more = ", and:" if len(shared) < len(model.sections()) else "."
            out += [f"Reads {names} as above{more}", ""]
        for section, part in model.sections().items():
            if section in done:
                continue
            done[section] = process
            doc = " ".join((part.__doc__ or "").split("\n\n")[0].split()).replace("``", "`")
            out += [f"### `[{section}]`", "", doc, "", section_table(model, section), ""]
    out += [
        "## Other variables",
        "",
        "No key of a settings file; each is read by the one place named.",
        "",
        "| variable | read for |",
        "| --- | --- |",
    ]
    out += [f"| `{name}` | {_cell(text)} |" for name, text in OTHER_VARIABLES.items()]
    out += [""]
    return "\n".join(out)
