"""The vocabulary every settings declaration speaks: typed values, converters, ``setting(...)``, secrets.

Settings are declared beside the code that uses them, as small frozen attrs classes whose fields come from
:func:`setting` (a provider kind declares its variables as a :class:`ProviderSettings`).  ``lynkr.config``
collects them into one ``Config`` and layers the sources.  This module imports nothing from lynkr, so any
module may declare settings without importing the configuration loader, and the loader can import them back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs

T = TypeVar("T")

MASK: Final = "***"

# Option keys that start with this prefix become static request headers: "header.X-Team" -> "X-Team".
HEADER_OPTION_PREFIX: Final = "header."


class ConfigError(Exception):
    """A configuration problem, described in one line that names the problem and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen(repr=False)
class Secret:
    """A value that must never be printed or logged: ``repr`` and ``str`` show ``***``."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------------------------
# Converters: one per value type, shared by the TOML and environment layers.


class Invalid(ValueError):
    """Raised by a converter; the caller turns it into a ConfigError naming the source."""


@attrs.frozen(kw_only=True)
class Context:
    base: Path  # relative paths resolve against this folder
    home: Path
    from_text: bool  # True for environment strings, False for typed TOML values


@attrs.frozen(kw_only=True)
class Converter:
    what: str  # "a port number (0-65535)": completes "X='abc' is not ..."
    example: str  # "a number like 8080": completes "set X to ..."
    convert: Callable[[object, Context], Any]
    keep_empty: bool = False  # an empty environment value means "empty", not "unset"


def text(raw: object) -> str:
    if not isinstance(raw, str):
        raise Invalid
    return raw


def int_between(lo: int, hi: int | None = None, *, what: str, example: str) -> Converter:
    def convert(raw: object, ctx: Context) -> int:
        if ctx.from_text:
            try:
                value = int(text(raw).strip().replace("_", ""))
            except ValueError:
                raise Invalid from None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            raise Invalid
        if value < lo or (hi is not None and value > hi):
            raise Invalid
        return value

    return Converter(what=what, example=example, convert=convert)


def count(lo: int, example: int, unit: str = "") -> Converter:
    noun = f"a whole number >= {lo}" + (f" of {unit}" if unit else "")
    return int_between(lo, what=noun, example=f"a number like {example}")


def seconds(example: float) -> Converter:
    def convert(raw: object, ctx: Context) -> float:
        if ctx.from_text:
            try:
                value = float(text(raw).strip())
            except ValueError:
                raise Invalid from None
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        else:
            raise Invalid
        if not value > 0 or value == float("inf"):
            raise Invalid
        return value

    return Converter(what="a positive number of seconds", example=f"a number like {example:g}", convert=convert)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _convert_bool(raw: object, ctx: Context) -> bool:
    if isinstance(raw, bool):
        return raw
    word = text(raw).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise Invalid


def _convert_str(raw: object, ctx: Context) -> str:
    return text(raw).strip()


def _convert_secret(raw: object, ctx: Context) -> Secret:
    return Secret(text(raw).strip())


def choice(*options: str, aliases: Mapping[str, str] | None = None) -> Converter:
    """One of ``options``; ``aliases`` maps other accepted words (the original project's names) to an option."""

    def convert(raw: object, ctx: Context) -> str:
        word = text(raw).strip().lower()
        word = (aliases or {}).get(word, word)
        if word not in options:
            raise Invalid
        return word

    listed = ", ".join(options)
    return Converter(what=f"one of {listed}", example=" or ".join(options), convert=convert)


def items(raw: object, separator: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(item.strip() for item in raw.split(separator) if item.strip())
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw if item.strip())
    raise Invalid


def _convert_str_list(raw: object, ctx: Context) -> tuple[str, ...]:
    return items(raw, ",")


def path(raw: str, ctx: Context) -> Path:
    stripped = raw.strip()
    if not stripped:
        raise Invalid
    if stripped == "~" or stripped.startswith("~/"):
        stripped = str(ctx.home) + stripped[1:]
    resolved = Path(stripped)
    return resolved if resolved.is_absolute() else (ctx.base / resolved).resolve()


def _convert_path(raw: object, ctx: Context) -> Path:
    return path(text(raw), ctx)


def _convert_path_list(raw: object, ctx: Context) -> tuple[Path, ...]:
    return tuple(path(item, ctx) for item in items(raw, ","))


def _convert_regex(raw: object, ctx: Context) -> str:
    pattern = text(raw)
    try:
        re.compile(pattern)
    except re.error:
        raise Invalid from None
    return pattern


JsonTree = dict[str, Any] | list[Any]


def _convert_json(raw: object, ctx: Context) -> JsonTree:
    if not ctx.from_text and isinstance(raw, dict | list):
        return raw
    try:
        value = json.loads(text(raw))
    except json.JSONDecodeError:
        raise Invalid from None
    if not isinstance(value, dict | list):
        raise Invalid
    return value


def _convert_string_table(raw: object, ctx: Context) -> dict[str, str]:
    """A JSON object (environment) or table (TOML) of scalars, each kept as a string, as provider options are."""
    table = raw
    if ctx.from_text:
        try:
            table = json.loads(text(raw))
        except json.JSONDecodeError:
            raise Invalid from None
    if not isinstance(table, dict):
        raise Invalid
    out: dict[str, str] = {}
    for key, value in table.items():
        as_text = option_text(value)
        if as_text is None:
            raise Invalid
        out[key] = as_text
    return out


def option_text(value: object) -> str | None:
    """A provider option's value as the string it is kept as (``true``, ``16384``), or None if not a scalar."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return None


# 0 asks the OS for a free port (tests and side-by-side daemons use it).
PORT = int_between(0, 65535, what="a port number (0-65535)", example="a number like 8080")
BOOL = Converter(what="true or false", example="true or false", convert=_convert_bool)
STR = Converter(what="a string", example='a quoted string like "value"', convert=_convert_str)
SECRET = Converter(what="a string", example='a quoted string like "sk-..."', convert=_convert_secret)
STR_LIST = Converter(
    what="a comma-separated list", example="comma-separated values like a,b", convert=_convert_str_list, keep_empty=True
)
PATH = Converter(what="a path", example="a folder like /home/me/project", convert=_convert_path)
PATH_LIST = Converter(
    what="a comma-separated list of paths",
    example="paths like ~/.claude/mcp,/etc/lynkr/mcp",
    convert=_convert_path_list,
    keep_empty=True,
)
REGEX = Converter(what="a valid regular expression", example="a pattern like ^(feat|fix): ", convert=_convert_regex)
JSON = Converter(what="a JSON object or array", example='JSON like {"allow": ["ls"]}', convert=_convert_json)
STRING_TABLE = Converter(
    what="a JSON object of strings", example='JSON like {"reasoning": "true"}', convert=_convert_string_table
)
MAX_TOKENS = count(1, 32000, "tokens")
NAME_LIST = Converter(what="a list of provider names", example='a list like ["backup"]', convert=_convert_str_list)


# ---------------------------------------------------------------------------------------------------------------
# Field metadata: every setting documents itself and says whether it is secret.

SETTING_KEY: Final = "lynkr.setting"
GROUP_KEY: Final = "lynkr.group"  # a nested settings class, with its own TOML table
SPECIAL_KEY: Final = "lynkr.special"  # filled by load_config itself, not from one key or variable


@attrs.frozen(kw_only=True)
class SettingInfo:
    env: str | None
    doc: str
    converter: Converter
    secret: bool
    default_text: str | None  # for defaults that are computed at load time


def setting(
    default: T,
    *,
    env: str | None,
    doc: str,
    converter: Converter,
    secret: bool = False,
    default_text: str | None = None,
) -> T:
    info = SettingInfo(env=env, doc=doc, converter=converter, secret=secret, default_text=default_text)
    return attrs.field(default=default, metadata={SETTING_KEY: info})


def computed(*, env: str, doc: str, converter: Converter, default_text: str) -> Any:
    info = SettingInfo(env=env, doc=doc, converter=converter, secret=False, default_text=default_text)
    return attrs.field(metadata={SETTING_KEY: info})


def group(cls: type[T], doc: str) -> T:
    return attrs.field(factory=cls, metadata={GROUP_KEY: doc})


def default_text(field: attrs.Attribute[Any]) -> str:
    default = field.default
    if default is None or default == ():
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    return str(default)


def walk_fields(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, attrs.Attribute[Any], SettingInfo]]:
    for field in attrs.fields(cls):
        if SPECIAL_KEY in field.metadata:
            continue
        if GROUP_KEY in field.metadata:
            yield from walk_fields(field.default.factory, f"{prefix}{field.name}.")
            continue
        yield f"{prefix}{field.name}", field, field.metadata[SETTING_KEY]


def walk_settings(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, SettingInfo]]:
    for field in attrs.fields(type(obj)):
        if SPECIAL_KEY in field.metadata:
            continue
        value = getattr(obj, field.name)
        if GROUP_KEY in field.metadata:
            yield from walk_settings(value, f"{prefix}{field.name}.")
            continue
        yield f"{prefix}{field.name}", value, field.metadata[SETTING_KEY]


def jsonable(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [jsonable(item) for item in value]
    if attrs.has(type(value)):
        return {key: jsonable(item) for key, item in attrs.asdict(value, recurse=False).items()}
    return value


def masked_settings(obj: Any) -> dict[str, Any]:
    """Every setting of ``obj`` (groups nested) as JSON-able data, secrets replaced by ``***``."""
    out: dict[str, Any] = {}
    for name, value, info in walk_settings(obj):
        node = out
        *groups, leaf = name.split(".")
        for group_name in groups:
            node = node.setdefault(group_name, {})
        node[leaf] = MASK if info.secret and value is not None else jsonable(value)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Providers: one configured upstream, and what each kind declares about its own settings.


@attrs.frozen(kw_only=True)
class ProviderConfig:
    """One upstream: where it is, how to authenticate, which models, and where to go when it fails."""

    name: str
    kind: str
    endpoint: str
    api_key: Secret | None = None
    models: Mapping[str, str] = attrs.field(factory=dict)
    default_model: str | None = None
    max_tokens: int | None = None  # a ceiling: larger requests are clamped, never rejected
    fallback: tuple[str, ...] = ()
    options: Mapping[str, str] = attrs.field(factory=dict, repr=lambda options: repr(masked_options(options)))
    http2: bool | None = None

    def masked(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "api_key": MASK if self.api_key else None,
            "models": dict(self.models),
            "default_model": self.default_model,
            "max_tokens": self.max_tokens,
            "fallback": list(self.fallback),
            "options": masked_options(self.options),
            "http2": self.http2,
        }

    def secrets(self) -> frozenset[str]:
        found = {value for key, value in self.options.items() if secret_option(key) and value}
        if self.api_key and self.api_key.reveal():
            found.add(self.api_key.reveal())
        return frozenset(found)


_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "cookie")


def secret_option(key: str) -> bool:
    """Options such as a static ``Authorization`` header carry credentials too."""
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def masked_options(options: Mapping[str, str]) -> dict[str, str]:
    return {key: MASK if secret_option(key) else value for key, value in options.items()}


# What an environment variable sets on a provider: "endpoint", "api_key", "model" (models.main), "small_model"
# (models.small), "max_tokens", "options" (all of them, as JSON), "http2", "fallback", or "option:<name>".
Target = str


@attrs.frozen(kw_only=True)
class ProviderVar:
    """One environment variable that configures an environment-built provider."""

    var: str
    target: Target
    doc: str
    default: str | None = None  # shown in the configuration table; only an endpoint's default is applied here


def always(endpoint: str) -> bool:
    return True


def never(endpoint: str) -> bool:
    return False


def only_at(default_endpoint: str) -> Callable[[str], bool]:
    """A key is needed at the vendor's own service; compatible local servers often take none."""
    host = urlsplit(default_endpoint).hostname

    def at_default_host(endpoint: str) -> bool:
        return urlsplit(endpoint).hostname == host

    return at_default_host


@attrs.frozen(kw_only=True)
class Requirement:
    """A value a provider of this kind cannot work without (beyond its endpoint and key)."""

    target: Target  # "model" (the main model or a default model) or "option:<name>"
    noun: str  # "deployment": completes "has no ..."
    example: str  # completes "set VAR to ..."
    toml_example: str  # completes "add key = ..."
    applies: Callable[[str], bool] = always  # endpoint -> whether the requirement holds there


# The variables every kind understands beyond the ones it declares: "<PREFIX>_MAX_TOKENS" and so on.
GENERIC_VARIABLES: Final = (
    ("API_KEY", "api_key", "API key, sent the way the provider expects it."),
    ("MODEL", "model", "Main upstream model (models.main)."),
    ("SMALL_MODEL", "small_model", "Upstream model for the CLI's small, fast requests (models.small)."),
    ("MAX_TOKENS", "max_tokens", "Output-token ceiling: larger requests are clamped, never rejected."),
    ("OPTIONS", "options", 'Provider options as a JSON object, e.g. {"reasoning": "true"}.'),
    ("HTTP2", "http2", "Speak HTTP/2 to the upstream (default: over https)."),
    ("FALLBACK", "fallback", "Providers to try when this one fails (comma-separated names)."),
)


@attrs.frozen(kw_only=True)
class ProviderSettings:
    """What a provider kind declares about its configuration: variables, defaults and what it requires.

    ``variables`` lists the kind's own names (kept from the original project); ``env_prefix`` gives it the
    generic ones too (``<PREFIX>_MAX_TOKENS``, ``<PREFIX>_OPTIONS``, ...) for any target it does not name.
    """

    kind: str
    env_prefix: str
    variables: tuple[ProviderVar, ...]
    endpoint_example: str
    key_example: str
    needs_key: Callable[[str], bool] = always  # endpoint -> whether a key is required there
    requires: tuple[Requirement, ...] = ()

    @property
    def all_variables(self) -> tuple[ProviderVar, ...]:
        declared = {var.target for var in self.variables}
        generic = tuple(
            ProviderVar(var=f"{self.env_prefix}_{suffix}", target=target, doc=doc)
            for suffix, target, doc in GENERIC_VARIABLES
            if target not in declared
        )
        return (*self.variables, *generic)

    def var_for(self, target: Target) -> str | None:
        return next((v.var for v in self.all_variables if v.target == target), None)

    @property
    def default_endpoint(self) -> str | None:
        return next((v.default for v in self.variables if v.target == "endpoint"), None)
