"""How every shelfcast process reads its settings: a TOML file, then ``SHELFCAST_*`` environment
variables, then command-line options, validated by one pydantic-settings model per process.

A model is a :class:`LayeredSettings` whose fields are sections (``[mqtt]`` in the file); the
variable of ``[mqtt] port`` is ``SHELFCAST_MQTT_PORT``. :func:`load_settings` reports every
problem at once, each on one line naming where the value came from (the file and key, the
variable, or the option) and how to set it. An unknown section, key or ``SHELFCAST_*`` variable
is an error that names the nearest valid one, so a typo never falls back to a default silently.

>>> from pydantic import Field
>>> class Broker(Section):
...     port: int = Field(1883, ge=1, le=65535)
>>> class Demo(LayeredSettings):
...     broker: Broker = Broker()
>>> _ = Demo.model_rebuild()  # a doctest's classes resolve late: a module's do not need this
>>> load_settings(Demo, env={"SHELFCAST_BROKER_PORT": "1884"}).broker.port
1884
>>> load_settings(Demo, env={"SHELFCAST_BROKER_PROT": "1884"})
Traceback (most recent call last):
...
configuration.layered_settings.ConfigError: SHELFCAST_BROKER_PROT: unknown variable; did you mean SHELFCAST_BROKER_PORT?
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from configuration.variables import ENV_PREFIX, OTHER_VARIABLES

CONFIG_ENV = "SHELFCAST_CONFIG"


class ConfigError(ValueError):
    """Settings that cannot work: ``problems`` holds one line per problem, each naming where the
    value came from and what to do; the message is those lines.

    >>> from configuration.hub_section import HubSection
    >>> class Hub(LayeredSettings):
    ...     hub: HubSection = HubSection()
    >>> _ = Hub.model_rebuild()
    >>> try:
    ...     load_settings(Hub, env={"SHELFCAST_HUB_PORT": "0", "SHELFCAST_HUB_WORKERS": "-1"})
    ... except ConfigError as err:
    ...     print([p.split(":")[0] for p in err.problems])  # every problem, each sourced
    ["SHELFCAST_HUB_PORT='0'", "SHELFCAST_HUB_WORKERS='-1'"]
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _allows_none(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation) or annotation is type(None)


class Section(BaseModel):
    """One ``[section]`` of a settings file: unknown keys refused, frozen once built, and an
    empty value (``SHELFCAST_BUNDLE=``) of an optional key meaning unset.

    >>> class Limits(Section):
    ...     cap: int | None = 10
    >>> Limits(cap="").cap, Limits().cap  # an empty value of an optional key: unset
    (None, 10)
    >>> Limits(cpa=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Limits
    cpa
      Extra inputs are not permitted ...
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=False, use_attribute_docstrings=True
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            k: None if v == "" and k in fields and _allows_none(fields[k].annotation) else v
            for k, v in data.items()
        }


@dataclass(frozen=True)
class _Inputs:
    """What one :func:`load_settings` call reads, for the model's sources."""

    path: Path | None
    file: dict[str, Any]
    env: dict[str, str]
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


_LOADING: ContextVar[_Inputs | None] = ContextVar("shelfcast_settings_inputs", default=None)


class _GivenEnv(EnvSettingsSource):
    """pydantic-settings' environment source over the variables :func:`load_settings` kept."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]):
        self._given = {k.lower(): v for k, v in env.items()}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given


class LayeredSettings(BaseSettings):
    """A process's settings: each field a :class:`Section`. Built directly it holds exactly
    the values given; :func:`load_settings` layers file, environment and options.

    ``env_shortcuts`` maps short variables (``SHELFCAST_STORE_ID``) to ``(section, key)``;
    ``foreign_sections`` are sections of the same file (and their variables) and
    ``foreign_variables`` further variables that another process reads, accepted here unchecked.

    >>> from configuration.hub_section import HubSection
    >>> class Hub(LayeredSettings):
    ...     hub: HubSection = HubSection()
    >>> _ = Hub.model_rebuild()
    >>> Hub(hub=HubSection(port=9000)).hub.port  # built directly: exactly the values given
    9000
    >>> env = {"SHELFCAST_HUB_PORT": "9001"}
    >>> [load_settings(Hub, env=env, overrides={"hub": {"port": p}}).hub.port for p in (None, 9002)]
    [9001, 9002]
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,  # SHELFCAST_MODEL_LEAD_TIME_DAYS: section model, key lead_time_days
        extra="forbid",
        frozen=True,
    )
    env_shortcuts: ClassVar[dict[str, tuple[str, str]]] = {}
    foreign_sections: ClassVar[frozenset[str]] = frozenset()
    foreign_variables: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        inputs = _LOADING.get()
        if inputs is None:
            return (init_settings,)
        # First wins: command-line options, then the environment, then the file.
        return (
            init_settings,
            _GivenEnv(settings_cls, inputs.env),
            InitSettingsSource(settings_cls, init_kwargs=inputs.file),
        )

    @classmethod
    def sections(cls) -> dict[str, type[Section]]:
        """Section name -> its model, in declaration order."""
        return {name: f.annotation for name, f in cls.model_fields.items()}

    @classmethod
    def env_name(cls, section: str, key: str) -> str:
        """The variable that sets ``[section] key`` (its shortcut when it has one)."""
        for short, target in cls.env_shortcuts.items():
            if target == (section, key):
                return short
        return f"{ENV_PREFIX}{section}_{key}".upper()

    @classmethod
    def env_names(cls) -> dict[str, tuple[str, str]]:
        """Every variable this model reads -> ``(section, key)``."""
        names = {
            f"{ENV_PREFIX}{section}_{key}".upper(): (section, key)
            for section, model in cls.sections().items()
            for key in model.model_fields
        }
        return names | dict(cls.env_shortcuts)

    @classmethod
    def where_to_set(cls, section: str, key: str) -> str:
        return f"set [{section}] {key} in the config file or {cls.env_name(section, key)}"


Settings = TypeVar("Settings", bound=LayeredSettings)


def _nearest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else f"known: {', '.join(choices)}"


def read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    """The file's tables, or ``{}`` with a problem naming the file."""
    if not path.is_file():
        problems.append(f"{path}: config file does not exist; pass an existing TOML file")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        problems.append(f"{path}: config file is not valid TOML: {err}")
        return {}


def _known_file_values(
    model: type[LayeredSettings], path: Path, raw: dict[str, Any], problems: list[str]
) -> dict[str, Any]:
    """The file's values for this model; an unknown section or key is a problem."""
    sections = model.sections()
    kept: dict[str, Any] = {}
    for section, table in raw.items():
        if section in model.foreign_sections:
            continue
        if section not in sections:
            problems.append(
                f"{path}: unknown section [{section}]; {_nearest(section, list(sections))}"
            )
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}: {section} = {table!r}: expected a [{section}] table")
            continue
        keys = list(sections[section].model_fields)
        for key, value in table.items():
            if key in keys:
                kept.setdefault(section, {})[key] = value
            else:
                problems.append(f"{path}: [{section}] {key}: unknown key; {_nearest(key, keys)}")
    return kept


def _known_env(
    model: type[LayeredSettings], env: Mapping[str, str], problems: list[str]
) -> dict[str, str]:
    """This model's variables under their full names, empty ones left out (unset); an unknown
    ``SHELFCAST_*`` is a problem."""
    own = model.env_names()
    known = [*own, *OTHER_VARIABLES]
    kept: dict[str, str] = {}
    for name, value in env.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        if upper in own:
            section, key = own[upper]
            if value != "":  # an empty variable is unset, as `-e NAME=` in a compose file means
                kept[f"{ENV_PREFIX}{section}_{key}".upper()] = value
        elif upper in OTHER_VARIABLES or upper in model.foreign_variables:
            continue
        elif any(upper.startswith(f"{ENV_PREFIX}{s}_".upper()) for s in model.foreign_sections):
            continue  # another process's section: that process checks it
        else:
            problems.append(unknown_variable(name, known))
    return kept


def unknown_variable(name: str, known: Iterable[str]) -> str:
    """The problem line for a ``SHELFCAST_*`` variable nothing reads, naming the nearest one.

    >>> unknown_variable("SHELFCAST_DATA_DIRR", ["SHELFCAST_DATA_DIR", "SHELFCAST_CONFIG"])
    'SHELFCAST_DATA_DIRR: unknown variable; did you mean SHELFCAST_DATA_DIR?'
    """
    return f"{name}: unknown variable; {_nearest(name.upper(), sorted(known))}"


def _origin(model: type[LayeredSettings], inputs: _Inputs, section: str, key: str) -> str:
    """Where the value of ``[section] key`` came from, for the problem line."""
    if key in inputs.overrides.get(section, {}):
        return "command line: "
    name = f"{ENV_PREFIX}{section}_{key}".upper()
    if name in inputs.env:
        return f"{model.env_name(section, key)}={inputs.env[name]!r}: "
    if key in inputs.file.get(section, {}):
        return f"{inputs.path}: "
    return ""


_TYPE_WORDS = {
    "int_parsing": "int",
    "int_from_float": "int",
    "int_type": "int",
    "float_parsing": "float",
    "float_type": "float",
    "bool_parsing": "bool",
    "bool_type": "bool",
    "string_type": "str",
}


def _problem_lines(
    model: type[LayeredSettings], inputs: _Inputs, err: ValidationError
) -> Iterator[str]:
    for e in err.errors(include_url=False):
        loc = [str(part) for part in e["loc"]]
        message = e["msg"].removeprefix("Value error, ")
        if len(loc) < 2:  # a section-wide rule: its message names the keys
            yield from (line for line in message.splitlines() if line)
            continue
        section, key = loc[0], loc[1]
        value = e.get("input")
        if e["type"] in _TYPE_WORDS:
            message = f"{value!r} is not a valid {_TYPE_WORDS[e['type']]}"
        elif e["type"] != "value_error":
            message = f"{value!r}: {message[:1].lower()}{message[1:]}"
        origin = _origin(model, inputs, section, key)
        yield f"{origin}{section}.{key}: {message}; {model.where_to_set(section, key)}"


@contextmanager
def _loading(inputs: _Inputs) -> Iterator[None]:
    token = _LOADING.set(inputs)
    try:
        yield
    finally:
        _LOADING.reset(token)


def load_settings(
    model: type[Settings],
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read ``path`` (else ``$SHELFCAST_CONFIG``; none is fine), then ``env`` (default the
    process's), then ``overrides`` (``{section: {key: value}}``, None values skipped: the
    command line's options). Raises :class:`ConfigError` listing every problem."""
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    chosen = path or env.get(CONFIG_ENV)
    file_path = Path(chosen) if chosen else None
    raw = read_toml(file_path, problems) if file_path else {}
    inputs = _Inputs(
        path=file_path,
        file=_known_file_values(model, file_path, raw, problems) if file_path else {},
        env=_known_env(model, env, problems),
        overrides={
            s: {k: v for k, v in keys.items() if v is not None}
            for s, keys in (overrides or {}).items()
        },
    )
    settings = None
    with _loading(inputs):
        try:
            # Every section from a dict, so keys that must be set are checked even when absent.
            settings = model(**{s: inputs.overrides.get(s, {}) for s in model.sections()})
        except ValidationError as err:
            problems.extend(_problem_lines(model, inputs, err))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings
