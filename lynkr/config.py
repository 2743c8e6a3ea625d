"""One typed configuration object, layered: defaults < TOML < ``.env`` < environment.

Sources, later ones winning field by field:

1. the defaults below (units in the names: ``connect_timeout_s``, ``max_body_bytes``);
2. a TOML file: ``--config PATH``, else ``lynkr.toml`` in the workspace (``WORKSPACE_ROOT``, else the
   working folder), if it exists;
3. ``.env`` in the working folder, read with python-dotenv (``KEY=VALUE`` lines, optional ``export`` prefix,
   quotes, ``#`` comments); it never overrides a variable that is really set.  The file belongs to the
   project, so a line lynkr cannot read is skipped with one warning naming the file and line, unless it is
   one of lynkr's own variables, which stops lynkr with a message naming the fix;
4. the environment.

TOML layout.  Top-level keys are the field names of :class:`Config` (``port = 8081``,
``tool_execution_mode = "server"``); the groups are tables named after their fields (``[prompt_cache]``,
``[policy]``, ``[mcp]``, ``[guard]``); providers and routing rules::

    model_provider = "primary"

    [providers.primary]
    kind = "databricks"                     # optional when the table name is a kind
    endpoint = "https://adb-1.azuredatabricks.net"
    api_key_env = "DATABRICKS_TOKEN"        # or api_key = "..." (keep such files private)
    models = { main = "databricks-claude-sonnet-4-5", small = "databricks-claude-haiku-4-5" }
    max_tokens = 32000                      # requests asking for more are clamped
    fallback = ["backup"]
    options = { endpoint_path = "/serving-endpoints/x/invocations" }
    headers = { X-Team = "ml" }             # extra static request headers

    [[routes]]
    model = "claude-haiku-*"                # glob; small = true / thinking = true also match
    provider = "backup"

Relative paths in the TOML file are relative to the file; in the environment, to the working folder.

Environment provider variables keep the original project's names.  For each kind whose variables are present
(``DATABRICKS_API_BASE``, ``OPENROUTER_API_KEY``, ...) a provider named after the kind is built, on top of a
``[providers.<kind>]`` table of the same kind if the TOML file has one.  ``MODEL_PROVIDER`` selects the
provider requests go to; with exactly one provider configured it is selected without being named.  A
provider's ``*_MODEL`` variable becomes its main model; ``MODEL_DEFAULT`` becomes the selected provider's main
model when nothing more specific names one.  Each kind declares its variables in its own module
(``lynkr/providers/<kind>.py``), and every kind also takes the generic ``<PREFIX>_API_KEY``, ``_MODEL``,
``_SMALL_MODEL``, ``_MAX_TOKENS``, ``_OPTIONS`` (a JSON object), ``_HTTP2`` and ``_FALLBACK`` for any field it
does not name itself (see ``lynkr.settings``).  Only a kind's own names create a provider; the generic ones
add to a provider that exists.

``Config.sources`` remembers which layer set each value; ``lynkr config --sources`` prints it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from lynkr.cache.settings import PromptCacheConfig
from lynkr.envfile import read_env_file
from lynkr.http.guard import GuardConfig
from lynkr.index.settings import IndexConfig
from lynkr.layers import ENV_FILE_NAME, TOML_FILE_NAME, Source, read_toml

# The short names the declarations below (and the groups merged into Config) are written with.
from lynkr.layers import Layers as _Layers
from lynkr.mcp.settings import McpConfig
from lynkr.provider_tables import build_providers, field_of
from lynkr.reflect.settings import ReflectorConfig
from lynkr.sessions.settings import SessionsConfig
from lynkr.settings import (
    BOOL,
    JSON,
    MASK,
    PATH,
    PATH_LIST,
    PORT,
    REGEX,
    SECRET,
    STR,
    STR_LIST,
    ConfigError,
    Converter,
    JsonTree,
    ProviderConfig,
    ProviderSettings,
    Secret,
    SettingInfo,
    default_text,
    masked_settings,
    setting,
    walk_fields,
    walk_settings,
)
from lynkr.settings import GROUP_KEY as _GROUP
from lynkr.settings import SETTING_KEY as _SETTING
from lynkr.settings import SPECIAL_KEY as _SPECIAL
from lynkr.settings import choice as _choice
from lynkr.settings import computed as _computed
from lynkr.settings import count as _count
from lynkr.settings import group as _group
from lynkr.settings import seconds as _seconds

__all__ = [  # the settings vocabulary stays importable from here, where it used to be declared
    "BOOL",
    "ENV_FILE_NAME",
    "JSON",
    "MASK",
    "PATH",
    "PATH_LIST",
    "PORT",
    "REGEX",
    "SECRET",
    "STR",
    "STR_LIST",
    "TOML_FILE_NAME",
    "Config",
    "ConfigError",
    "Converter",
    "McpConfig",
    "PolicyConfig",
    "PromptCacheConfig",
    "ProviderConfig",
    "RouteRule",
    "Secret",
    "SettingInfo",
    "Source",
    "_choice",
    "_computed",
    "_count",
    "_group",
    "_seconds",
    "load_config",
    "nothing_configured_hint",
    "setting",
]

MiB: Final = 1024 * 1024


@attrs.frozen(kw_only=True)
class SnapshotConfig:
    interval_s: float = setting(
        300.0,
        env="LYNKR_SNAPSHOT_INTERVAL_S",
        doc="How often the daemon snapshots state derived from the log (sessions), so that start-up folds "
        "only the log's tail; it also snapshots at shutdown.",
        converter=_seconds(300.0),
    )


@attrs.frozen(kw_only=True)
class PolicyConfig:
    max_steps: int = setting(
        8, env="POLICY_MAX_STEPS", doc="Most model round trips per turn in server tool mode.", converter=_count(1, 8)
    )
    max_tool_calls: int = setting(
        12, env="POLICY_MAX_TOOL_CALLS", doc="Most tool calls per turn in server tool mode.", converter=_count(0, 12)
    )
    disallowed_tools: tuple[str, ...] = setting(
        (), env="POLICY_DISALLOWED_TOOLS", doc="Tools the server never runs (comma-separated).", converter=STR_LIST
    )
    git_allow_push: bool = setting(False, env="POLICY_GIT_ALLOW_PUSH", doc="Allow the git push tool.", converter=BOOL)
    git_allow_pull: bool = setting(True, env="POLICY_GIT_ALLOW_PULL", doc="Allow the git pull tool.", converter=BOOL)
    git_allow_commit: bool = setting(
        True,
        env="POLICY_GIT_ALLOW_COMMIT",
        doc="Allow the git commit tool.",
        converter=BOOL,
    )
    git_test_command: str | None = setting(
        None, env="POLICY_GIT_TEST_COMMAND", doc="Command that must pass before a commit.", converter=STR
    )
    git_require_tests: bool = setting(
        False, env="POLICY_GIT_REQUIRE_TESTS", doc="Refuse commits until the test command passed.", converter=BOOL
    )
    git_commit_regex: str | None = setting(
        None, env="POLICY_GIT_COMMIT_REGEX", doc="Pattern every commit message must match.", converter=REGEX
    )
    git_autostash: bool = setting(
        False, env="POLICY_GIT_AUTOSTASH", doc="Stash local changes around git pull.", converter=BOOL
    )
    file_allowed_paths: tuple[str, ...] = setting(
        (),
        env="POLICY_FILE_ALLOWED_PATHS",
        doc="If set, file tools may touch only paths matching these globs (inside the workspace).",
        converter=STR_LIST,
    )
    file_blocked_paths: tuple[str, ...] = setting(
        (".env*", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx", ".git/",
         ".ssh/", ".gnupg/", ".aws/", ".netrc", ".pgpass", "/etc/shadow"),
        env="POLICY_FILE_BLOCKED_PATHS",
        doc="Path globs tools never read or write, shell commands included (name, folder/, /absolute).",
        converter=STR_LIST,
    )
    safe_commands_enabled: bool = setting(
        True,
        env="POLICY_SAFE_COMMANDS_ENABLED",
        doc="Judge every shell command against the allow/deny lists (built-in deny: sudo, mkfs*, shutdown, ...).",
        converter=BOOL,
    )
    safe_commands_config: JsonTree | None = setting(
        None,
        env="POLICY_SAFE_COMMANDS_CONFIG",
        doc='Command rules as JSON {"allow": [...], "deny": [...]}, each "name [arg...]" with globs.',
        converter=JSON,
    )


@attrs.frozen(kw_only=True)
class ToolsConfig:
    """lynkr's own tools: which are offered to the model in each mode, and the limits they run under."""

    server_mode_families: tuple[str, ...] = setting(
        ("workspace", "cli", "mcp", "index", "plugin"),
        env="LYNKR_SERVER_MODE_TOOLS",
        doc="Tool families lynkr offers beside the client's in server mode.",
        converter=STR_LIST,
    )
    client_mode_families: tuple[str, ...] = setting(
        ("mcp",),
        env="LYNKR_CLIENT_MODE_TOOLS",
        doc="Tool families lynkr offers beside the client's in client mode (empty: none).",
        converter=STR_LIST,
    )
    tool_notes: bool = setting(
        False, env="LYNKR_TOOL_NOTES", doc="Stream a one-line note to the client per server-run tool.", converter=BOOL
    )
    shell_timeout_ms: int = setting(
        120_000, env="LYNKR_SHELL_TIMEOUT_MS", doc="Default timeout of a shell command.", converter=_count(1, 120000, "ms")
    )
    output_limit_bytes: int = setting(
        30_000,
        env="LYNKR_TOOL_OUTPUT_LIMIT_BYTES",
        doc="Largest tool output returned to the model; the rest is cut with a marker.",
        converter=_count(1024, 30000, "bytes"),
    )
    test_command: str | None = setting(
        None, env="WORKSPACE_TEST_COMMAND", doc="Command workspace_test_run runs (default: detected).", converter=STR
    )
    test_timeout_ms: int = setting(
        600_000, env="WORKSPACE_TEST_TIMEOUT_MS", doc="Timeout of one test run.", converter=_count(1, 600000, "ms")
    )
    web_fetch_allowed_hosts: tuple[str, ...] = setting(
        (),
        env="LYNKR_WEB_FETCH_ALLOWED_HOSTS",
        doc="Private, loopback or link-local hosts WebFetch may reach anyway.",
        converter=STR_LIST,
    )


@attrs.frozen(kw_only=True)
class RouteRule:
    """Send matching requests to ``provider``.  Unset conditions match anything; rules are tried in order.

    Matching lives beside the provider pool, in :mod:`lynkr.upstream.routing`.
    """

    provider: str
    model: str | None = None  # a glob over the requested (Claude) model name
    small: bool | None = None  # the CLI's background / small-fast-model requests
    thinking: bool | None = None  # requests with extended thinking enabled
    min_input_tokens: int | None = None  # requests whose estimated input is larger (long context)

    def masked(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _provider_settings() -> tuple[tuple[str, ...], Mapping[str, ProviderSettings]]:
    """Every installed kind, and the settings each built-in kind declares in its own module.

    Asked of the registry when configuration is loaded, not when this module is imported: the provider
    modules declare their settings with ``lynkr.settings`` and never import this module, and this module
    reaches them only through the registry, which also finds the plugins installed at that moment.
    """
    from lynkr.providers import registry

    return registry.installed_kinds(), registry.BUILTIN_SETTINGS


def nothing_configured_hint() -> str:
    """One line telling a user with no provider what to set."""
    kinds = ", ".join(_provider_settings()[1])
    return (
        "no LLM provider is configured; set MODEL_PROVIDER to one of "
        f"{kinds} and that provider's variables, e.g. MODEL_PROVIDER=databricks "
        "DATABRICKS_API_BASE=https://<workspace>.cloud.databricks.com DATABRICKS_API_KEY=<token>, "
        "or MODEL_PROVIDER=ollama OLLAMA_MODEL=<model>, "
        f"or add a [providers.<name>] table to {TOML_FILE_NAME} (run `lynkr config` to see every setting)"
    )


# ---------------------------------------------------------------------------------------------------------------
# The configuration object.


@attrs.frozen(kw_only=True)
class Config:
    """The effective configuration.  Build it with :func:`load_config`."""

    host: str = setting("127.0.0.1", env="LYNKR_HOST", doc="Address to listen on.", converter=STR)
    port: int = setting(8080, env="PORT", doc="Port to listen on.", converter=PORT)
    workspace_root: Path = _computed(
        env="WORKSPACE_ROOT", doc="Folder the server-side tools work in.", converter=PATH, default_text="working folder"
    )
    data_dir: Path = _computed(
        env="LYNKR_DATA_DIR",
        doc="Where the event log lives.",
        converter=PATH,
        default_text="$XDG_STATE_HOME/lynkr/<workspace>-<hash>",
    )
    config_path: Path | None = attrs.field(default=None, metadata={_SPECIAL: "The TOML file in force, if any."})
    env_file: Path | None = attrs.field(default=None, metadata={_SPECIAL: "The .env file read, if any."})
    sources: Mapping[str, Source] = attrs.field(
        factory=dict, metadata={_SPECIAL: "Which layer set each value that is not a default, by dotted name."}
    )
    model_provider: str | None = setting(
        None, env="MODEL_PROVIDER", doc="Name of the provider requests go to.", converter=STR
    )
    model_default: str | None = setting(
        None, env="MODEL_DEFAULT", doc="Upstream model for the selected provider when none is mapped.", converter=STR
    )
    tool_execution_mode: str = setting(
        "client",
        env="TOOL_EXECUTION_MODE",
        doc="client (or passthrough): the CLI runs tools; server: lynkr runs them in the workspace.",
        converter=_choice("client", "server", aliases={"passthrough": "client"}),
    )
    api_key: Secret | None = setting(
        None, env="LYNKR_API_KEY", doc="Key clients must present (x-api-key or Bearer).", converter=SECRET, secret=True
    )
    providers: Mapping[str, ProviderConfig] = attrs.field(
        factory=dict,
        metadata={_SPECIAL: "Configured upstreams by name."},
    )
    routes: tuple[RouteRule, ...] = attrs.field(default=(), metadata={_SPECIAL: "Routing rules, tried in order."})
    mailbox_capacity: int = setting(
        64, env="LYNKR_MAILBOX_CAPACITY", doc="Messages an actor's mailbox holds.", converter=_count(1, 64)
    )
    max_body_bytes: int = setting(
        32 * MiB,
        env="LYNKR_MAX_BODY_BYTES",
        doc="Largest request body accepted.",
        converter=_count(1, 33554432, "bytes"),
        default_text="33554432 (32 MiB)",
    )
    connect_timeout_s: float = setting(
        10.0, env="LYNKR_CONNECT_TIMEOUT_S", doc="Upstream connect timeout.", converter=_seconds(10)
    )
    first_byte_timeout_s: float = setting(
        120.0, env="LYNKR_FIRST_BYTE_TIMEOUT_S", doc="Wait for an upstream's first byte.", converter=_seconds(120)
    )
    idle_timeout_s: float = setting(
        120.0, env="LYNKR_IDLE_TIMEOUT_S", doc="Longest silence inside an upstream stream.", converter=_seconds(120)
    )
    json_upstream_max_tokens: int = setting(
        4096,
        env="LYNKR_JSON_UPSTREAM_MAX_TOKENS",
        doc="A non-streaming request for at most this many output tokens asks the upstream for one JSON body "
        "instead of a stream (0: always stream).",
        converter=_count(0, 4096),
    )
    max_retries: int = setting(
        2, env="LYNKR_MAX_RETRIES", doc="Retries of a failed upstream attempt.", converter=_count(0, 2)
    )
    retry_backoff_initial_s: float = setting(
        0.5, env="LYNKR_RETRY_BACKOFF_INITIAL_S", doc="First retry delay (doubles).", converter=_seconds(0.5)
    )
    retry_backoff_max_s: float = setting(
        8.0, env="LYNKR_RETRY_BACKOFF_MAX_S", doc="Longest retry delay.", converter=_seconds(8)
    )
    breaker_failure_threshold: int = setting(
        5, env="LYNKR_BREAKER_FAILURE_THRESHOLD", doc="Failures in a row that open a circuit.", converter=_count(1, 5)
    )
    breaker_reset_s: float = setting(
        30.0, env="LYNKR_BREAKER_RESET_S", doc="How long an open circuit waits before a trial.", converter=_seconds(30)
    )
    supervisor_max_restarts: int = setting(
        5,
        env="LYNKR_SUPERVISOR_MAX_RESTARTS",
        doc="Crashes within the window before escalating.",
        converter=_count(0, 5),
    )
    supervisor_window_s: float = setting(
        60.0, env="LYNKR_SUPERVISOR_WINDOW_S", doc="Window for counting actor crashes.", converter=_seconds(60)
    )
    restart_backoff_initial_s: float = setting(
        0.1, env="LYNKR_RESTART_BACKOFF_INITIAL_S", doc="First actor restart delay (doubles).", converter=_seconds(0.1)
    )
    restart_backoff_max_s: float = setting(
        5.0, env="LYNKR_RESTART_BACKOFF_MAX_S", doc="Longest actor restart delay.", converter=_seconds(5)
    )
    shutdown_grace_s: float = setting(
        10.0, env="LYNKR_SHUTDOWN_GRACE_S", doc="Time open requests get to finish at shutdown.", converter=_seconds(10)
    )
    log_map_size_bytes: int = setting(
        256 * MiB,
        env="LYNKR_LOG_MAP_SIZE_BYTES",
        doc="Initial LMDB map size (it grows when full).",
        converter=_count(MiB, 268435456, "bytes"),
        default_text="268435456 (256 MiB)",
    )
    recorder_batch_max: int = setting(
        256, env="LYNKR_RECORDER_BATCH_MAX", doc="Most events per log transaction.", converter=_count(1, 256)
    )
    recorder_commit_delay_s: float = setting(
        0.02,
        env="LYNKR_RECORDER_COMMIT_DELAY_S",
        doc="How long events nobody waits on may wait for others to share a log transaction.",
        converter=_seconds(0.02),
    )
    log_level: str = setting(
        "info",
        env="LYNKR_LOG_LEVEL",
        doc="Logging level.",
        converter=_choice("debug", "info", "warning", "error", "critical"),
    )
    guard: GuardConfig = _group(GuardConfig, "Which web origins and Host names may reach the daemon.")
    prompt_cache: PromptCacheConfig = _group(PromptCacheConfig, "Prompt cache.")
    snapshots: SnapshotConfig = _group(SnapshotConfig, "Snapshots of state derived from the event log.")
    policy: PolicyConfig = _group(PolicyConfig, "Limits on server-side tool use.")
    tools: ToolsConfig = _group(ToolsConfig, "lynkr's own tools.")
    mcp: McpConfig = _group(McpConfig, "MCP servers and their sandbox.")
    index: IndexConfig = _group(IndexConfig, "The workspace index, its tools and the generated CLAUDE.md.")
    reflector: ReflectorConfig = _group(ReflectorConfig, "The reflector: skills learned from finished tasks.")
    sessions: SessionsConfig = _group(SessionsConfig, "Sessions: how long the event log keeps them whole.")

    @property
    def provider(self) -> ProviderConfig | None:
        """The selected provider, if any."""
        return self.providers.get(self.model_provider) if self.model_provider else None

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, every secret replaced by ``***``."""
        out = masked_settings(self)
        out["config_path"] = str(self.config_path) if self.config_path else None
        out["env_file"] = str(self.env_file) if self.env_file else None
        out["providers"] = {name: provider.masked() for name, provider in self.providers.items()}
        out["routes"] = [rule.masked() for rule in self.routes]
        return out

    def secrets(self) -> frozenset[str]:
        """Every secret value in force, for the log scrubber."""
        found: set[str] = set()
        for _, value, info in walk_settings(self):
            if info.secret and isinstance(value, Secret) and value.reveal():
                found.add(value.reveal())
        for provider in self.providers.values():
            found |= provider.secrets()
        return frozenset(found)

    @classmethod
    def describe(cls) -> list[tuple[str, str | None, str, str]]:
        """``(name, environment variable, default, description)`` for every setting, providers included."""
        rows = [
            (name, info.env, info.default_text or default_text(field), info.doc)
            for name, field, info in walk_fields(cls)
        ]
        kinds = _provider_settings()[1].values()
        for spec in kinds:
            for var in spec.variables:
                rows.append((f"providers.{spec.kind}.{field_of(var)}", var.var, var.default or "unset", var.doc))
        # The variables every kind takes, once: <PREFIX> stands for the kind's own (DATABRICKS, OPENAI, ...).
        for var in ProviderSettings(
            kind="<kind>", env_prefix="<PREFIX>", variables=(), endpoint_example="", key_example=""
        ).all_variables:
            rows.append((f"providers.<kind>.{field_of(var)}", var.var, "unset", var.doc))
        return rows

    def explained(self) -> list[tuple[str, Any, str]]:
        """``(dotted name, masked value, where it came from)`` for every value in force."""
        rows = []
        for name, value in _leaves(self.masked()):
            if name in ("config_path", "env_file"):
                continue
            rows.append((name, value, self._source_of(name)))
        return rows

    def _source_of(self, name: str) -> str:
        source = self.sources.get(name)
        return source.describe(config_path=self.config_path) if source is not None else "default"


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# ---------------------------------------------------------------------------------------------------------------
# Loading: the .env file, the TOML file, and the layering.


def _resolve_settings(cls: type[Any], table: Mapping[str, Any], prefix: str, layers: _Layers) -> dict[str, Any]:
    """Keyword arguments for ``cls``: TOML values, then environment values, over the class defaults."""
    fields = attrs.fields(cls)
    tomlable = [f.name for f in fields if _SPECIAL not in f.metadata or f.name in ("providers", "routes")]
    for key in table:
        if key not in tomlable:
            raise layers.unknown_key(f"{prefix}{key}", tomlable)
    values: dict[str, Any] = {}
    for field in fields:
        if _SPECIAL in field.metadata:
            continue
        dotted = f"{prefix}{field.name}"
        if _GROUP in field.metadata:
            group_table = layers.table(table.get(field.name, {}), dotted)
            group_cls = field.default.factory
            values[field.name] = group_cls(**_resolve_settings(group_cls, group_table, f"{dotted}.", layers))
            continue
        info: SettingInfo = field.metadata[_SETTING]
        if field.name in table:
            values[field.name] = layers.convert_toml(info.converter, dotted, table[field.name])
            layers.sources[dotted] = Source(layer="toml", key=dotted)
        if info.env and layers.env_value(info.env, keep_empty=info.converter.keep_empty) is not None:
            values[field.name] = layers.convert_env(info.converter, info.env)
            layers.sources[dotted] = layers.env_source(info.env)
    return values


def default_data_dir(workspace_root: Path, *, environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_STATE_HOME/lynkr/<workspace name>-<hash>``: one log per workspace, never inside the workspace."""
    state = environ.get("XDG_STATE_HOME", "")
    state_home = Path(state) if state and Path(state).is_absolute() else home / ".local" / "state"
    digest = hashlib.sha256(str(workspace_root).encode("utf-8")).hexdigest()[:8]
    return state_home / "lynkr" / f"{workspace_root.name or 'root'}-{digest}"


def own_variables(kinds: Mapping[str, ProviderSettings]) -> frozenset[str]:
    """Every variable lynkr itself reads: a broken line setting one of these in ``.env`` stops lynkr."""
    names = {info.env for _, _, info in walk_fields(Config) if info.env}
    names.update(var.var for spec in kinds.values() for var in spec.all_variables)
    return frozenset(names)


def load_config(*, environ: Mapping[str, str], cwd: Path, config_path: Path | None = None) -> Config:
    """Build the effective configuration.  Reads only the TOML and ``.env`` files; raises :class:`ConfigError`."""
    cwd = cwd.resolve()
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    installed, kinds = _provider_settings()
    env_file = cwd / ENV_FILE_NAME
    dotenv = read_env_file(env_file, own=own_variables(kinds)) if env_file.is_file() else {}
    merged = {**dotenv, **environ}
    early = _Layers(
        toml={},
        toml_path=None,
        env=merged,
        from_dotenv=frozenset(key for key in dotenv if key not in environ),
        env_file=env_file if dotenv else None,
        cwd=cwd,
        home=home,
    )
    # The TOML file is looked up in the workspace, so the workspace is first taken from the environment alone.
    workspace_guess = cwd
    if early.env_value("WORKSPACE_ROOT") is not None:
        workspace_guess = early.convert_env(PATH, "WORKSPACE_ROOT")
    toml_path: Path | None = None
    if config_path is not None:
        toml_path = (cwd / config_path.expanduser()).resolve()
    elif (workspace_guess / TOML_FILE_NAME).is_file():
        toml_path = workspace_guess / TOML_FILE_NAME
    toml = read_toml(toml_path, explicit=config_path is not None) if toml_path else {}
    layers = attrs.evolve(early, toml=toml, toml_path=toml_path)

    values = _resolve_settings(Config, toml, "", layers)
    workspace_root = values.pop("workspace_root", cwd)
    if not workspace_root.is_dir():
        source = "WORKSPACE_ROOT" if layers.env_value("WORKSPACE_ROOT") else f"workspace_root in {toml_path}"
        raise ConfigError(f"{source} is {str(workspace_root)!r}, which is not a folder; set it to your project folder")
    data_dir = values.pop("data_dir", None) or default_data_dir(workspace_root, environ=merged, home=home)

    if values["mcp"].manifest_dirs is None:
        values["mcp"] = attrs.evolve(values["mcp"], manifest_dirs=(home / ".claude" / "mcp",))

    providers, selected = build_providers(
        layers.table(toml.get("providers", {}), "providers"),
        layers,
        installed=installed,
        kinds=kinds,
        requested=values.get("model_provider"),
        model_default=values.get("model_default"),
    )
    routes = _routes(toml.get("routes", []), providers, layers)
    if routes:
        layers.sources["routes"] = Source(layer="toml", key="routes")
    values["model_provider"] = selected
    return Config(
        workspace_root=workspace_root,
        data_dir=data_dir,
        config_path=toml_path,
        env_file=layers.env_file,
        sources=layers.sources,
        providers=providers,
        routes=routes,
        **values,
    )


_ROUTE_KEYS: Final = ("provider", "model", "small", "thinking", "min_input_tokens")
_INPUT_TOKENS = _count(1, 100000, "tokens")


def _routes(raw: object, providers: Mapping[str, ProviderConfig], layers: _Layers) -> tuple[RouteRule, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{layers.toml_path}: routes must be an array of tables; write each rule as [[routes]]")
    rules = []
    for number, entry in enumerate(raw, start=1):
        prefix = f"routes[{number}]"
        table = layers.table(entry, prefix)
        for key in table:
            if key not in _ROUTE_KEYS:
                raise layers.unknown_key(f"{prefix}.{key}", list(_ROUTE_KEYS))
        if "provider" not in table:
            raise ConfigError(f"{prefix} in {layers.toml_path} has no provider; add provider = \"<name>\"")
        provider = layers.convert_toml(STR, f"{prefix}.provider", table["provider"])
        if provider not in providers:
            choices = ", ".join(sorted(providers)) or "none are configured"
            raise ConfigError(
                f"{layers.toml_label(prefix + '.provider', provider)} is not a configured provider; "
                f"use one of {choices}"
            )
        rules.append(
            RouteRule(
                provider=provider,
                model=layers.convert_toml(STR, f"{prefix}.model", table["model"]) if "model" in table else None,
                small=layers.convert_toml(BOOL, f"{prefix}.small", table["small"]) if "small" in table else None,
                thinking=layers.convert_toml(BOOL, f"{prefix}.thinking", table["thinking"])
                if "thinking" in table
                else None,
                min_input_tokens=layers.convert_toml(
                    _INPUT_TOKENS, f"{prefix}.min_input_tokens", table["min_input_tokens"]
                )
                if "min_input_tokens" in table
                else None,
            )
        )
    return tuple(rules)
