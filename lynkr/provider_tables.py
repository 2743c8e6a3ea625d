"""The configured providers: ``[providers.<name>]`` tables, the environment form, and their validation.

Each kind declares its variables, defaults and requirements in its own module (``SETTINGS`` in
``lynkr/providers/<kind>.py``) and they arrive here through the registry: nothing here names a kind.

For each kind whose own variables are set (``DATABRICKS_API_BASE``, ``OPENROUTER_API_KEY``, ...), or that
``MODEL_PROVIDER`` names, a provider named after the kind is built, on top of a TOML table of that name.  The
generic variables (``<PREFIX>_MAX_TOKENS``, ``<PREFIX>_OPTIONS``, ...) only add to a provider that exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from lynkr.layers import ENV_FILE_NAME, TOML_FILE_NAME, Layers, Source
from lynkr.settings import (
    BOOL,
    HEADER_OPTION_PREFIX,
    MAX_TOKENS,
    NAME_LIST,
    SECRET,
    STR,
    STRING_TABLE,
    option_text,
    ConfigError,
    Converter,
    ProviderConfig,
    ProviderSettings,
    ProviderVar,
    Secret,
)


def build_providers(
    tables: Mapping[str, Any],
    layers: Layers,
    *,
    installed: tuple[str, ...],
    kinds: Mapping[str, ProviderSettings],
    requested: str | None,
    model_default: str | None,
) -> tuple[dict[str, ProviderConfig], str | None]:
    """Every configured provider by name, and the name of the selected one; their sources go to ``layers``."""
    drafts = _toml_providers(tables, layers, installed, kinds)
    _overlay_env_providers(drafts, layers, kinds, requested=requested)
    selected = _select_provider(drafts, requested, layers, kinds)
    if selected and model_default and "main" not in drafts[selected].models:
        drafts[selected].models["main"] = model_default
        drafts[selected].sources["models.main"] = layers.sources["model_default"]
    providers = {name: _finish_provider(draft, drafts, layers) for name, draft in drafts.items()}
    for name, draft in drafts.items():
        layers.sources.update({f"providers.{name}.{key}": source for key, source in draft.sources.items()})
    return providers, selected


def field_of(var: ProviderVar) -> str:
    """The provider field a variable sets, as ``lynkr config`` names it."""
    if var.target.startswith("option:"):
        return "options." + var.target.removeprefix("option:")
    return {"model": "models.main", "small_model": "models.small"}.get(var.target, var.target)


@attrs.define(kw_only=True)
class _Draft:
    name: str
    kind: str
    settings: ProviderSettings | None  # None for plugin kinds, which are configured in TOML only
    endpoint: str | None = None
    api_key: Secret | None = None
    models: dict[str, str] = attrs.field(factory=dict)
    default_model: str | None = None
    max_tokens: int | None = None
    fallback: tuple[str, ...] = ()
    options: dict[str, str] = attrs.field(factory=dict)
    http2: bool | None = None
    in_toml: bool = False
    from_env: bool = False  # environment variables configured this provider
    sources: dict[str, Source] = attrs.field(factory=dict)  # by field ("endpoint", "models.main", ...)


_PROVIDER_KEYS: Final = (
    "kind",
    "endpoint",
    "api_key",
    "api_key_env",
    "models",
    "default_model",
    "max_tokens",
    "fallback",
    "options",
    "headers",
    "http2",
)


def _string_table(layers: Layers, raw: object, dotted: str) -> dict[str, str]:
    table = layers.table(raw, dotted)
    out: dict[str, str] = {}
    for key, value in table.items():
        as_text = option_text(value)
        if as_text is None:
            raise ConfigError(
                f"{layers.toml_label(f'{dotted}.{key}', value)} is not a string; set {dotted}.{key} to a quoted string"
            )
        out[key] = as_text
    return out


def _toml_providers(
    tables: Mapping[str, Any], layers: Layers, installed: tuple[str, ...], kinds: Mapping[str, ProviderSettings]
) -> dict[str, _Draft]:
    drafts: dict[str, _Draft] = {}
    for name, raw in tables.items():
        prefix = f"providers.{name}"
        table = layers.table(raw, prefix)
        for key in table:
            if key not in _PROVIDER_KEYS:
                raise layers.unknown_key(f"{prefix}.{key}", list(_PROVIDER_KEYS))
        kind = table.get("kind", name if name in installed else None)
        if kind is None:
            raise ConfigError(
                f"[{prefix}] in {layers.toml_path} has no kind; add kind = \"...\" with one of {', '.join(installed)}"
            )
        if kind not in installed:
            raise ConfigError(
                f"{layers.toml_label(prefix + '.kind', kind)} is not an installed provider kind; "
                f"use one of {', '.join(installed)} or install the plugin that provides it"
            )
        draft = _Draft(name=name, kind=kind, settings=kinds.get(kind), in_toml=True)
        take = partial(_take, draft, table, prefix, layers)
        draft.sources["kind"] = draft.sources["name"] = Source(layer="toml", key=prefix)
        if "endpoint" in table:
            draft.endpoint = take("endpoint", STR)
        draft.api_key = _toml_api_key(table, prefix, layers)
        if draft.api_key is not None:
            draft.sources["api_key"] = Source(layer="toml", key=f"{prefix}.api_key")
        if "models" in table:
            draft.models = _string_table(layers, table["models"], f"{prefix}.models")
            draft.sources.update({f"models.{key}": Source(layer="toml", key=f"{prefix}.models") for key in draft.models})
        if "default_model" in table:
            draft.default_model = take("default_model", STR)
        if "max_tokens" in table:
            draft.max_tokens = take("max_tokens", MAX_TOKENS)
        if "fallback" in table:
            draft.fallback = take("fallback", NAME_LIST)
        if "options" in table:
            draft.options = _string_table(layers, table["options"], f"{prefix}.options")
        if "headers" in table:
            headers = _string_table(layers, table["headers"], f"{prefix}.headers")
            draft.options.update({HEADER_OPTION_PREFIX + key: value for key, value in headers.items()})
        draft.sources.update({f"options.{key}": Source(layer="toml", key=f"{prefix}.options") for key in draft.options})
        if "http2" in table:
            draft.http2 = take("http2", BOOL)
        drafts[name] = draft
    return drafts


def _take(draft: _Draft, table: Mapping[str, Any], prefix: str, layers: Layers, key: str, converter: Converter) -> Any:
    """The typed value of ``key`` in a provider's table, noting that the TOML file set it."""
    draft.sources[key] = Source(layer="toml", key=f"{prefix}.{key}")
    return layers.convert_toml(converter, f"{prefix}.{key}", table[key])


def _toml_api_key(table: Mapping[str, Any], prefix: str, layers: Layers) -> Secret | None:
    if "api_key" in table and "api_key_env" in table:
        raise ConfigError(f"[{prefix}] in {layers.toml_path} sets both api_key and api_key_env; keep one of them")
    if "api_key" in table:
        secret: Secret = layers.convert_toml(SECRET, f"{prefix}.api_key", table["api_key"])
        return secret
    if "api_key_env" not in table:
        return None
    var = layers.convert_toml(STR, f"{prefix}.api_key_env", table["api_key_env"])
    value = layers.env_value(var)
    if value is None:
        raise ConfigError(
            f"{prefix}.api_key_env = {var!r} in {layers.toml_path}, but {var} is not set; "
            f"export {var} or put it in {ENV_FILE_NAME}"
        )
    return Secret(value.strip())


def _overlay_env_providers(
    drafts: dict[str, _Draft], layers: Layers, kinds: Mapping[str, ProviderSettings], *, requested: str | None
) -> None:
    """Build (or update) the provider named after each kind whose variables are set, or that is selected by kind."""
    for spec in kinds.values():
        present = [var for var in spec.all_variables if layers.env_value(var.var) is not None]
        selected_by_kind = requested is not None and requested not in drafts and requested.lower() == spec.kind
        # Only the kind's own names (or MODEL_PROVIDER) call a provider into being; the generic ones
        # (OLLAMA_API_KEY, OPENAI_MAX_TOKENS, ...) are common in shells set up for other tools, so they only
        # add to a provider that exists.
        called = selected_by_kind or any(var in spec.variables for var in present)
        if not (called or (present and spec.kind in drafts)):
            continue
        draft = drafts.get(spec.kind)
        if draft is None:
            draft = drafts[spec.kind] = _Draft(name=spec.kind, kind=spec.kind, settings=spec)
            draft.sources["kind"] = draft.sources["name"] = (
                layers.env_source(present[0].var) if present else layers.env_source("MODEL_PROVIDER")
            )
        elif draft.kind != spec.kind:
            variables = ", ".join(layers.env_label(var.var) for var in present)
            raise ConfigError(
                f"[providers.{spec.kind}] in {layers.toml_path} has kind {draft.kind!r}, but {variables} configure "
                f"a {spec.kind} provider of that name; rename the TOML table"
            )
        draft.from_env = True
        # A whole-options variable first, so that a variable naming one option wins over it.
        for var in sorted(present, key=lambda var: var.target != "options"):
            _apply_env_variable(draft, var, layers)


def _apply_env_variable(draft: _Draft, var: ProviderVar, layers: Layers) -> None:
    value = (layers.env_value(var.var) or "").strip()
    target = var.target
    source = layers.env_source(var.var)
    if target == "endpoint":
        draft.endpoint = value
    elif target == "api_key":
        draft.api_key = Secret(value)
    elif target in ("model", "small_model"):
        draft.models["main" if target == "model" else "small"] = value
    elif target == "max_tokens":
        draft.max_tokens = layers.convert_env(MAX_TOKENS, var.var)
    elif target == "http2":
        draft.http2 = layers.convert_env(BOOL, var.var)
    elif target == "fallback":
        draft.fallback = layers.convert_env(NAME_LIST, var.var)
    elif target == "options":
        options: dict[str, str] = layers.convert_env(STRING_TABLE, var.var)
        draft.options.update(options)
        draft.sources.update({f"options.{key}": source for key in options})
        return
    else:
        draft.options[target.removeprefix("option:")] = value
    draft.sources[field_of(var)] = source


def _select_provider(
    drafts: Mapping[str, _Draft], requested: str | None, layers: Layers, kinds: Mapping[str, ProviderSettings]
) -> str | None:
    if requested is not None:
        if requested in drafts:
            return requested
        folded = {name.lower(): name for name in drafts}
        if requested.lower() in folded:
            return folded[requested.lower()]
        source = (
            layers.env_label("MODEL_PROVIDER")
            if layers.env_value("MODEL_PROVIDER")
            else layers.toml_label("model_provider", requested)
        )
        choices = ", ".join(sorted(set(drafts) | set(kinds)))
        raise ConfigError(f"{source} is not a configured provider; set MODEL_PROVIDER to one of {choices}")
    if len(drafts) > 1:
        names = ", ".join(sorted(drafts))
        raise ConfigError(
            f"several providers are configured ({names}) but MODEL_PROVIDER is not set; "
            "set MODEL_PROVIDER to the one requests should go to"
        )
    return next(iter(drafts), None)


def _missing(draft: _Draft, layers: Layers, target: str, noun: str, example: str, toml_example: str) -> ConfigError:
    spec = draft.settings if draft.from_env or draft.name == draft.kind else None
    var = spec.var_for(target) if spec else None
    problem = f"provider {draft.name!r} ({draft.kind}) has no {noun}"
    if var and not draft.in_toml:
        return ConfigError(f"{problem}; set {var} to {example}")
    toml_key = {"endpoint": "endpoint", "api_key": "api_key_env", "model": "models.main"}.get(
        target, target.replace("option:", "options.")
    )
    where = f"[providers.{draft.name}] in {layers.toml_path or TOML_FILE_NAME}"
    also = f" (or set {var})" if var else ""
    return ConfigError(f"{problem}; add {toml_key} = {toml_example} to {where}{also}")


def _finish_provider(draft: _Draft, drafts: Mapping[str, _Draft], layers: Layers) -> ProviderConfig:
    spec = draft.settings
    endpoint = draft.endpoint or (spec.default_endpoint if spec else None)
    if not endpoint:
        example = spec.endpoint_example if spec else "an https:// URL"
        raise _missing(draft, layers, "endpoint", "endpoint URL", example, f'"{example}"')
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"provider {draft.name!r} ({draft.kind}) endpoint {endpoint!r} is not an http(s) URL; "
            f"set it to a full URL like {spec.endpoint_example if spec else 'https://host/path'}"
        )
    if draft.api_key is None and spec is not None and spec.needs_key(endpoint):
        raise _missing(draft, layers, "api_key", "API key", spec.key_example, '"NAME_OF_THE_VARIABLE_HOLDING_THE_KEY"')
    for requirement in spec.requires if spec else ():
        if not requirement.applies(endpoint):
            continue
        if requirement.target == "model":
            present = "main" in draft.models or bool(draft.default_model)
        else:
            present = bool(draft.options.get(requirement.target.removeprefix("option:")))
        if not present:
            raise _missing(
                draft, layers, requirement.target, requirement.noun, requirement.example, requirement.toml_example
            )
    for name in draft.fallback:
        if name == draft.name or name not in drafts:
            reason = "itself" if name == draft.name else f"{name!r}, which is not configured"
            others = ", ".join(sorted(set(drafts) - {draft.name})) or "none are configured"
            raise ConfigError(
                f"providers.{draft.name}.fallback names {reason}; list other providers ({others})"
            )
    return ProviderConfig(
        name=draft.name,
        kind=draft.kind,
        endpoint=endpoint,
        api_key=draft.api_key,
        models=draft.models,
        default_model=draft.default_model,
        max_tokens=draft.max_tokens,
        fallback=draft.fallback,
        options=draft.options,
        http2=draft.http2,
    )
