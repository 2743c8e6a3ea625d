"""Which adapter serves which provider kind: the built-in kinds plus plugins.

Third-party kinds are Python entry points in the group ``lynkr.providers``: the entry point's name is the kind,
its object a callable ``(ProviderConfig) -> Adapter``.  A distribution declares one in its pyproject::

    [project.entry-points."lynkr.providers"]
    my-kind = "my_package:build_adapter"

Built-in kinds win over a plugin of the same name, so installing a package cannot silently reroute traffic
meant for a built-in upstream.  Plugins are looked up on each call (not cached) because this runs only at
start-up and when configuration is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points

from lynkr.providers import anthropic, azure_anthropic, azure_openai, databricks, ollama, openai, openrouter
from lynkr.providers.base import Adapter
from lynkr.settings import ProviderConfig, ProviderSettings

ENTRY_POINT_GROUP = "lynkr.providers"

AdapterFactory = Callable[[ProviderConfig], Adapter]

BUILTIN_KINDS: Mapping[str, AdapterFactory] = {
    databricks.KIND: databricks.build,
    azure_anthropic.KIND: azure_anthropic.build,
    azure_openai.KIND: azure_openai.build,
    openrouter.KIND: openrouter.build,
    ollama.KIND: ollama.build,
    openai.KIND: openai.build,
    anthropic.KIND: anthropic.build,
}

# Each built-in kind's own declaration of its variables, defaults and requirements, in the same order.  Plugin
# kinds are configured through lynkr.toml only.
BUILTIN_SETTINGS: Mapping[str, ProviderSettings] = {
    settings.kind: settings
    for settings in (
        databricks.SETTINGS,
        azure_anthropic.SETTINGS,
        azure_openai.SETTINGS,
        openrouter.SETTINGS,
        ollama.SETTINGS,
        openai.SETTINGS,
        anthropic.SETTINGS,
    )
}


class UnknownProviderKind(LookupError):
    """No built-in adapter or installed plugin serves this kind."""


class BrokenPlugin(RuntimeError):
    """A plugin's entry point could not be loaded, or built something that is not an adapter."""


def _plugin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN_KINDS}


def installed_kinds() -> tuple[str, ...]:
    """Built-in kinds in their documented order, then plugin kinds sorted by name."""
    return (*BUILTIN_KINDS, *sorted(_plugin_entry_points()))


def factory_for(kind: str) -> AdapterFactory:
    builtin = BUILTIN_KINDS.get(kind)
    if builtin is not None:
        return builtin
    entry_point = _plugin_entry_points().get(kind)
    if entry_point is None:
        raise UnknownProviderKind(
            f"no provider kind {kind!r} is installed; installed kinds: {', '.join(installed_kinds())}"
        )
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise BrokenPlugin(f"provider plugin {kind!r} ({entry_point.value}) failed to load: {exc!r}") from exc
    if not callable(loaded):
        raise BrokenPlugin(f"provider plugin {kind!r} ({entry_point.value}) is not callable")
    factory: AdapterFactory = loaded
    return factory


def adapter_for(provider: ProviderConfig) -> Adapter:
    adapter = factory_for(provider.kind)(provider)
    if not isinstance(adapter, Adapter):
        raise BrokenPlugin(
            f"provider kind {provider.kind!r} built {type(adapter).__name__}, which lacks the Adapter interface"
        )
    return adapter
