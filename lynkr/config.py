"""One typed configuration object, layered: defaults < TOML < ``.env`` < environment.

Sources, later ones winning field by field:

1. the defaults below (units in the names: ``connect_timeout_s``, ``max_body_bytes``);
2. a TOML file: ``--config PATH``, else ``lynkr.toml`` in the workspace (``WORKSPACE_ROOT``, else the
   working folder), if it exists;
3. ``.env`` in the working folder (``KEY=VALUE`` lines, optional ``export`` prefix, quotes, ``#`` comments);
   it never overrides a variable that is really set;
4. the environment.

TOML layout.  Top-level keys are the field names of :class:`Config` (``port = 8081``,
``tool_execution_mode = "server"``); the groups are tables named after their fields (``[prompt_cache]``,
``[policy]``, ``[mcp]``); providers and routing rules::

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
model when nothing more specific names one.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs

from lynkr.providers import anthropic, azure_openai, databricks, ollama, openai, openrouter, registry
from lynkr.providers.base import HEADER_OPTION_PREFIX

T = TypeVar("T")

TOML_FILE_NAME: Final = "lynkr.toml"
ENV_FILE_NAME: Final = ".env"
MASK: Final = "***"
MiB: Final = 1024 * 1024


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


class _Invalid(ValueError):
    """Raised by a converter; the caller turns it into a ConfigError naming the source."""


@attrs.frozen(kw_only=True)
class _Ctx:
    base: Path  # relative paths resolve against this folder
    home: Path
    from_text: bool  # True for environment strings, False for typed TOML values


@attrs.frozen(kw_only=True)
class Converter:
    what: str  # "a port number (0-65535)": completes "X='abc' is not ..."
    example: str  # "a number like 8080": completes "set X to ..."
    convert: Callable[[object, _Ctx], Any]
    keep_empty: bool = False  # an empty environment value means "empty", not "unset"


def _text(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid
    return raw


def _int(lo: int, hi: int | None = None, *, what: str, example: str) -> Converter:
    def convert(raw: object, ctx: _Ctx) -> int:
        if ctx.from_text:
            try:
                value = int(_text(raw).strip().replace("_", ""))
            except ValueError:
                raise _Invalid from None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            raise _Invalid
        if value < lo or (hi is not None and value > hi):
            raise _Invalid
        return value

    return Converter(what=what, example=example, convert=convert)


def _seconds(example: float) -> Converter:
    def convert(raw: object, ctx: _Ctx) -> float:
        if ctx.from_text:
            try:
                value = float(_text(raw).strip())
            except ValueError:
                raise _Invalid from None
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        else:
            raise _Invalid
        if not value > 0 or value == float("inf"):
            raise _Invalid
        return value

    return Converter(what="a positive number of seconds", example=f"a number like {example:g}", convert=convert)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _convert_bool(raw: object, ctx: _Ctx) -> bool:
    if isinstance(raw, bool):
        return raw
    word = _text(raw).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Invalid


def _convert_str(raw: object, ctx: _Ctx) -> str:
    return _text(raw).strip()


def _convert_secret(raw: object, ctx: _Ctx) -> Secret:
    return Secret(_text(raw).strip())


def _choice(*options: str) -> Converter:
    def convert(raw: object, ctx: _Ctx) -> str:
        word = _text(raw).strip().lower()
        if word not in options:
            raise _Invalid
        return word

    listed = ", ".join(options)
    return Converter(what=f"one of {listed}", example=" or ".join(options), convert=convert)


def _items(raw: object, ctx: _Ctx, separator: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(item.strip() for item in raw.split(separator) if item.strip())
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw if item.strip())
    raise _Invalid


def _convert_str_list(raw: object, ctx: _Ctx) -> tuple[str, ...]:
    return _items(raw, ctx, ",")


def _path(raw: str, ctx: _Ctx) -> Path:
    text = raw.strip()
    if not text:
        raise _Invalid
    if text == "~" or text.startswith("~/"):
        text = str(ctx.home) + text[1:]
    path = Path(text)
    return path if path.is_absolute() else (ctx.base / path).resolve()


def _convert_path(raw: object, ctx: _Ctx) -> Path:
    return _path(_text(raw), ctx)


def _convert_path_list(raw: object, ctx: _Ctx) -> tuple[Path, ...]:
    return tuple(_path(item, ctx) for item in _items(raw, ctx, ","))


def _convert_regex(raw: object, ctx: _Ctx) -> str:
    pattern = _text(raw)
    try:
        re.compile(pattern)
    except re.error:
        raise _Invalid from None
    return pattern


JsonTree = dict[str, Any] | list[Any]


def _convert_json(raw: object, ctx: _Ctx) -> JsonTree:
    if not ctx.from_text and isinstance(raw, dict | list):
        return raw
    try:
        value = json.loads(_text(raw))
    except json.JSONDecodeError:
        raise _Invalid from None
    if not isinstance(value, dict | list):
        raise _Invalid
    return value


@attrs.frozen(kw_only=True)
class SandboxMount:
    """An extra bind mount for the MCP sandbox container."""

    host: Path
    container: str
    mode: str = "rw"


def _convert_mounts(raw: object, ctx: _Ctx) -> tuple[SandboxMount, ...]:
    mounts = []
    for entry in _items(raw, ctx, ";"):
        parts = [part.strip() for part in entry.split(":")]
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise _Invalid
        mode = parts[2] if len(parts) == 3 and parts[2] else "rw"
        if mode not in ("ro", "rw"):
            raise _Invalid
        mounts.append(SandboxMount(host=_path(parts[0], ctx), container=parts[1], mode=mode))
    return tuple(mounts)


# 0 asks the OS for a free port (tests and side-by-side daemons use it).
PORT = _int(0, 65535, what="a port number (0-65535)", example="a number like 8080")
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
MOUNTS = Converter(
    what="a ;-separated list of host:container[:ro|rw] mounts",
    example="mounts like /data:/data:ro;/tmp/x:/x",
    convert=_convert_mounts,
    keep_empty=True,
)


def _count(lo: int, example: int, unit: str = "") -> Converter:
    noun = f"a whole number >= {lo}" + (f" of {unit}" if unit else "")
    return _int(lo, what=noun, example=f"a number like {example}")


# ---------------------------------------------------------------------------------------------------------------
# Field metadata: every setting documents itself and says whether it is secret.

_SETTING: Final = "lynkr.setting"
_GROUP: Final = "lynkr.group"  # a nested settings class, with its own TOML table
_SPECIAL: Final = "lynkr.special"  # filled by load_config itself, not from one key or variable


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
    return attrs.field(default=default, metadata={_SETTING: info})


def _computed(*, env: str, doc: str, converter: Converter, default_text: str) -> Any:
    info = SettingInfo(env=env, doc=doc, converter=converter, secret=False, default_text=default_text)
    return attrs.field(metadata={_SETTING: info})


def _group(cls: type[T], doc: str) -> T:
    return attrs.field(factory=cls, metadata={_GROUP: doc})


@attrs.frozen(kw_only=True)
class PromptCacheConfig:
    enabled: bool = setting(
        True,
        env="PROMPT_CACHE_ENABLED",
        doc="Serve repeated prompts from the cache.",
        converter=BOOL,
    )
    ttl_ms: int = setting(
        300_000,
        env="PROMPT_CACHE_TTL_MS",
        doc="How long a cached response stays fresh.",
        converter=_count(1, 300000, "ms"),
    )
    max_entries: int = setting(
        64, env="PROMPT_CACHE_MAX_ENTRIES", doc="Most responses kept in the cache.", converter=_count(0, 64)
    )


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
        (), env="POLICY_FILE_ALLOWED_PATHS", doc="If set, file tools may touch only these paths.", converter=STR_LIST
    )
    file_blocked_paths: tuple[str, ...] = setting(
        ("/.env", ".env", "/etc/passwd", "/etc/shadow"),
        env="POLICY_FILE_BLOCKED_PATHS",
        doc="Paths file tools never touch.",
        converter=STR_LIST,
    )
    safe_commands_enabled: bool = setting(
        True,
        env="POLICY_SAFE_COMMANDS_ENABLED",
        doc="Check shell commands against the safe-command rules.",
        converter=BOOL,
    )
    safe_commands_config: JsonTree | None = setting(
        None, env="POLICY_SAFE_COMMANDS_CONFIG", doc="Safe-command rules as JSON.", converter=JSON
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
class McpConfig:
    server_manifest: Path | None = setting(
        None, env="MCP_SERVER_MANIFEST", doc="A JSON manifest of MCP servers to start.", converter=PATH
    )
    # None only on a hand-built McpConfig: load_config fills in ~/.claude/mcp when nothing sets it.
    manifest_dirs: tuple[Path, ...] | None = setting(
        None,
        env="MCP_MANIFEST_DIRS",
        doc="Folders searched for MCP manifests (empty: none).",
        converter=PATH_LIST,
        default_text="~/.claude/mcp",
    )
    sandbox_enabled: bool = setting(
        True, env="MCP_SANDBOX_ENABLED", doc="Run MCP servers in a container when an image is set.", converter=BOOL
    )
    sandbox_image: str | None = setting(
        None,
        env="MCP_SANDBOX_IMAGE",
        doc="Container image for MCP servers.",
        converter=STR,
    )
    sandbox_runtime: str = setting("docker", env="MCP_SANDBOX_RUNTIME", doc="Container runtime command.", converter=STR)
    sandbox_container_workspace: str = setting(
        "/workspace", env="MCP_SANDBOX_CONTAINER_WORKSPACE", doc="Workspace path inside the container.", converter=STR
    )
    sandbox_mount_workspace: bool = setting(
        True, env="MCP_SANDBOX_MOUNT_WORKSPACE", doc="Mount the workspace into the container.", converter=BOOL
    )
    sandbox_allow_networking: bool = setting(
        False, env="MCP_SANDBOX_ALLOW_NETWORKING", doc="Give the container network access.", converter=BOOL
    )
    sandbox_network_mode: str = setting(
        "bridge",
        env="MCP_SANDBOX_NETWORK_MODE",
        doc="Container network mode when networking is allowed.",
        converter=STR,
    )
    sandbox_passthrough_env: tuple[str, ...] = setting(
        ("PATH", "LANG", "LC_ALL", "TERM", "HOME"),
        env="MCP_SANDBOX_PASSTHROUGH_ENV",
        doc="Environment variables passed into the container.",
        converter=STR_LIST,
    )
    sandbox_extra_mounts: tuple[SandboxMount, ...] = setting(
        (), env="MCP_SANDBOX_EXTRA_MOUNTS", doc="Extra mounts, host:container[:ro|rw];...", converter=MOUNTS
    )
    sandbox_timeout_ms: int = setting(
        20_000, env="MCP_SANDBOX_TIMEOUT_MS", doc="Default MCP call timeout.", converter=_count(1, 20000, "ms")
    )
    sandbox_user: str | None = setting(
        None,
        env="MCP_SANDBOX_USER",
        doc="User to run as in the container.",
        converter=STR,
    )
    sandbox_entrypoint: str | None = setting(
        None, env="MCP_SANDBOX_ENTRYPOINT", doc="Container entrypoint override.", converter=STR
    )
    sandbox_reuse_session: bool = setting(
        True, env="MCP_SANDBOX_REUSE_SESSION", doc="Reuse one container per session.", converter=BOOL
    )
    sandbox_read_only_root: bool = setting(
        False, env="MCP_SANDBOX_READ_ONLY_ROOT", doc="Mount the container's root read-only.", converter=BOOL
    )
    sandbox_no_new_privileges: bool = setting(
        True, env="MCP_SANDBOX_NO_NEW_PRIVILEGES", doc="Forbid privilege escalation in the container.", converter=BOOL
    )
    sandbox_drop_capabilities: tuple[str, ...] = setting(
        ("ALL",), env="MCP_SANDBOX_DROP_CAPABILITIES", doc="Linux capabilities dropped.", converter=STR_LIST
    )
    sandbox_add_capabilities: tuple[str, ...] = setting(
        (), env="MCP_SANDBOX_ADD_CAPABILITIES", doc="Linux capabilities added back.", converter=STR_LIST
    )
    sandbox_memory_limit: str = setting(
        "512m",
        env="MCP_SANDBOX_MEMORY_LIMIT",
        doc="Container memory limit.",
        converter=STR,
    )
    sandbox_cpu_limit: str = setting("1.0", env="MCP_SANDBOX_CPU_LIMIT", doc="Container CPU limit.", converter=STR)
    sandbox_pids_limit: int = setting(
        100, env="MCP_SANDBOX_PIDS_LIMIT", doc="Most processes in the container.", converter=_count(1, 100)
    )
    permission_mode: str = setting(
        "auto",
        env="MCP_SANDBOX_PERMISSION_MODE",
        doc="MCP tool permission: auto, require (ask) or deny.",
        converter=_choice("auto", "require", "deny"),
    )
    permission_allow: tuple[str, ...] = setting(
        (), env="MCP_SANDBOX_PERMISSION_ALLOW", doc="MCP tools always allowed.", converter=STR_LIST
    )
    permission_deny: tuple[str, ...] = setting(
        (), env="MCP_SANDBOX_PERMISSION_DENY", doc="MCP tools always denied.", converter=STR_LIST
    )


# ---------------------------------------------------------------------------------------------------------------
# Providers and routing.


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
    options: Mapping[str, str] = attrs.field(factory=dict, repr=lambda options: repr(_masked_options(options)))
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
            "options": _masked_options(self.options),
            "http2": self.http2,
        }

    def secrets(self) -> frozenset[str]:
        found = {value for key, value in self.options.items() if _secret_option(key) and value}
        if self.api_key and self.api_key.reveal():
            found.add(self.api_key.reveal())
        return frozenset(found)


_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "cookie")


def _secret_option(key: str) -> bool:
    """Options such as a static ``Authorization`` header carry credentials too."""
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _masked_options(options: Mapping[str, str]) -> dict[str, str]:
    return {key: MASK if _secret_option(key) else value for key, value in options.items()}


@attrs.frozen(kw_only=True)
class RouteRule:
    """Send matching requests to ``provider``.  Unset conditions match anything; rules are tried in order."""

    provider: str
    model: str | None = None  # a glob over the requested (Claude) model name
    small: bool | None = None  # the CLI's background / small-fast-model requests
    thinking: bool | None = None  # requests with extended thinking enabled

    def matches(self, model: str, *, small: bool, thinking: bool) -> bool:
        if self.model is not None and not fnmatch.fnmatchcase(model, self.model):
            return False
        if self.small is not None and self.small != small:
            return False
        return self.thinking is None or self.thinking == thinking

    def masked(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class _ProviderVar:
    """One environment variable that configures an environment-built provider."""

    var: str
    target: str  # "endpoint", "api_key", "model" or "option:<name>"
    doc: str
    default: str | None = None


@attrs.frozen(kw_only=True)
class _EnvProvider:
    kind: str
    variables: tuple[_ProviderVar, ...]
    endpoint_example: str
    key_example: str

    def var_for(self, target: str) -> str | None:
        return next((v.var for v in self.variables if v.target == target), None)


_ENV_PROVIDERS: Final = (
    _EnvProvider(
        kind=databricks.KIND,
        variables=(
            _ProviderVar(var="DATABRICKS_API_BASE", target="endpoint", doc="Databricks workspace URL."),
            _ProviderVar(var="DATABRICKS_API_KEY", target="api_key", doc="Databricks personal access token."),
            _ProviderVar(
                var="DATABRICKS_ENDPOINT_PATH",
                target="option:endpoint_path",
                doc="Serving endpoint path; under /serving-endpoints/anthropic/ it speaks Anthropic.",
                default=databricks.DEFAULT_ENDPOINT_PATH,
            ),
        ),
        endpoint_example="your workspace URL like https://adb-123.azuredatabricks.net",
        key_example="a Databricks personal access token (dapi...)",
    ),
    _EnvProvider(
        kind="azure-anthropic",
        variables=(
            _ProviderVar(
                var="AZURE_ANTHROPIC_ENDPOINT",
                target="endpoint",
                doc="Full https://<resource>.services.ai.azure.com/anthropic/v1/messages URL.",
            ),
            _ProviderVar(var="AZURE_ANTHROPIC_API_KEY", target="api_key", doc="Azure AI Foundry key."),
            _ProviderVar(
                var="AZURE_ANTHROPIC_VERSION", target="option:api_version", doc="Pins the anthropic-version header."
            ),
        ),
        endpoint_example="https://<resource>.services.ai.azure.com/anthropic/v1/messages",
        key_example="your Azure AI Foundry key",
    ),
    _EnvProvider(
        kind=azure_openai.KIND,
        variables=(
            _ProviderVar(
                var="AZURE_OPENAI_ENDPOINT",
                target="endpoint",
                doc="https://<resource>.openai.azure.com (or .../openai/v1).",
            ),
            _ProviderVar(var="AZURE_OPENAI_API_KEY", target="api_key", doc="Azure OpenAI key."),
            _ProviderVar(var="AZURE_OPENAI_DEPLOYMENT", target="option:deployment", doc="Deployment name (the model)."),
            _ProviderVar(
                var="AZURE_OPENAI_API_VERSION",
                target="option:api_version",
                doc="api-version for the deployments URL form.",
                default=azure_openai.DEFAULT_API_VERSION,
            ),
        ),
        endpoint_example="https://<resource>.openai.azure.com",
        key_example="your Azure OpenAI key",
    ),
    _EnvProvider(
        kind=openrouter.KIND,
        variables=(
            _ProviderVar(var="OPENROUTER_API_KEY", target="api_key", doc="OpenRouter API key."),
            _ProviderVar(
                var="OPENROUTER_MODEL",
                target="model",
                doc="OpenRouter model, e.g. anthropic/claude-sonnet-4.5.",
            ),
            _ProviderVar(
                var="OPENROUTER_ENDPOINT",
                target="endpoint",
                doc="OpenRouter chat URL.",
                default=openrouter.DEFAULT_ENDPOINT,
            ),
        ),
        endpoint_example=openrouter.DEFAULT_ENDPOINT,
        key_example="your OpenRouter key (sk-or-...)",
    ),
    _EnvProvider(
        kind=ollama.KIND,
        variables=(
            _ProviderVar(
                var="OLLAMA_ENDPOINT", target="endpoint", doc="Ollama server URL.", default=ollama.DEFAULT_ENDPOINT
            ),
            _ProviderVar(var="OLLAMA_MODEL", target="model", doc="Ollama model, e.g. qwen2.5-coder."),
        ),
        endpoint_example=ollama.DEFAULT_ENDPOINT,
        key_example="the key your Ollama proxy expects",
    ),
    _EnvProvider(
        kind=openai.KIND,
        variables=(
            _ProviderVar(var="OPENAI_API_KEY", target="api_key", doc="OpenAI (or compatible server) API key."),
            _ProviderVar(var="OPENAI_MODEL", target="model", doc="Model name, e.g. gpt-4.1."),
            _ProviderVar(
                var="OPENAI_ENDPOINT",
                target="endpoint",
                doc="Chat completions URL, or a base like http://host:8000/v1.",
                default=openai.DEFAULT_ENDPOINT,
            ),
        ),
        endpoint_example=openai.DEFAULT_ENDPOINT,
        key_example="your OpenAI key (sk-...)",
    ),
    _EnvProvider(
        kind=anthropic.KIND,
        variables=(
            _ProviderVar(
                var="ANTHROPIC_UPSTREAM_URL",
                target="endpoint",
                doc="Anthropic Messages URL.",
                default=anthropic.DEFAULT_ENDPOINT,
            ),
            _ProviderVar(
                var="ANTHROPIC_UPSTREAM_API_KEY",
                target="api_key",
                doc="Key for the upstream (not ANTHROPIC_API_KEY, which Claude Code itself reads).",
            ),
        ),
        endpoint_example=anthropic.DEFAULT_ENDPOINT,
        key_example="your Anthropic key (sk-ant-...)",
    ),
)
_ENV_PROVIDER_BY_KIND: Final = {spec.kind: spec for spec in _ENV_PROVIDERS}
_DEFAULT_ENDPOINTS: Final = {
    spec.kind: var.default
    for spec in _ENV_PROVIDERS
    for var in spec.variables
    if var.target == "endpoint" and var.default
}


def nothing_configured_hint() -> str:
    """One line telling a user with no provider what to set."""
    kinds = ", ".join(_ENV_PROVIDER_BY_KIND)
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
    model_provider: str | None = setting(
        None, env="MODEL_PROVIDER", doc="Name of the provider requests go to.", converter=STR
    )
    model_default: str | None = setting(
        None, env="MODEL_DEFAULT", doc="Upstream model for the selected provider when none is mapped.", converter=STR
    )
    tool_execution_mode: str = setting(
        "client",
        env="TOOL_EXECUTION_MODE",
        doc="client: the CLI runs tools; server: lynkr runs them in the workspace.",
        converter=_choice("client", "server"),
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
    prompt_cache: PromptCacheConfig = _group(PromptCacheConfig, "Prompt cache.")
    snapshots: SnapshotConfig = _group(SnapshotConfig, "Snapshots of state derived from the event log.")
    policy: PolicyConfig = _group(PolicyConfig, "Limits on server-side tool use.")
    tools: ToolsConfig = _group(ToolsConfig, "lynkr's own tools.")
    mcp: McpConfig = _group(McpConfig, "MCP servers and their sandbox.")

    @property
    def provider(self) -> ProviderConfig | None:
        """The selected provider, if any."""
        return self.providers.get(self.model_provider) if self.model_provider else None

    def route(self, model: str, *, small: bool, thinking: bool) -> str | None:
        """The provider name for a request: the first matching rule, else ``model_provider``."""
        for rule in self.routes:
            if rule.matches(model, small=small, thinking=thinking):
                return rule.provider
        return self.model_provider

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, every secret replaced by ``***``."""
        out = _masked_settings(self)
        out["config_path"] = str(self.config_path) if self.config_path else None
        out["env_file"] = str(self.env_file) if self.env_file else None
        out["providers"] = {name: provider.masked() for name, provider in self.providers.items()}
        out["routes"] = [rule.masked() for rule in self.routes]
        return out

    def secrets(self) -> frozenset[str]:
        """Every secret value in force, for the log scrubber."""
        found: set[str] = set()
        for _, value, info in _walk_settings(self):
            if info.secret and isinstance(value, Secret) and value.reveal():
                found.add(value.reveal())
        for provider in self.providers.values():
            found |= provider.secrets()
        return frozenset(found)

    @classmethod
    def describe(cls) -> list[tuple[str, str | None, str, str]]:
        """``(name, environment variable, default, description)`` for every setting, providers included."""
        rows = [
            (name, info.env, info.default_text or _default_text(field), info.doc)
            for name, field, info in _walk_fields(cls)
        ]
        for spec in _ENV_PROVIDERS:
            for var in spec.variables:
                target = var.target.removeprefix("option:")
                target = "models.main" if target == "model" else target
                rows.append((f"providers.{spec.kind}.{target}", var.var, var.default or "unset", var.doc))
        return rows


def _default_text(field: attrs.Attribute[Any]) -> str:
    default = field.default
    if default is None or default == ():
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    return str(default)


def _walk_fields(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, attrs.Attribute[Any], SettingInfo]]:
    for field in attrs.fields(cls):
        if _SPECIAL in field.metadata:
            continue
        if _GROUP in field.metadata:
            yield from _walk_fields(field.default.factory, f"{prefix}{field.name}.")
            continue
        yield f"{prefix}{field.name}", field, field.metadata[_SETTING]


def _walk_settings(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, SettingInfo]]:
    for field in attrs.fields(type(obj)):
        if _SPECIAL in field.metadata:
            continue
        value = getattr(obj, field.name)
        if _GROUP in field.metadata:
            yield from _walk_settings(value, f"{prefix}{field.name}.")
            continue
        yield f"{prefix}{field.name}", value, field.metadata[_SETTING]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if attrs.has(type(value)):
        return {key: _jsonable(item) for key, item in attrs.asdict(value, recurse=False).items()}
    return value


def _masked_settings(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value, info in _walk_settings(config):
        node = out
        *groups, leaf = name.split(".")
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = MASK if info.secret and value is not None else _jsonable(value)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Loading: the .env file, the TOML file, and the layering.

_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_DOUBLE_QUOTED_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, *, source: str) -> dict[str, str]:
    """``KEY=VALUE`` lines: ``export`` prefix, single quotes (literal), double quotes (escapes), ``#`` comments."""
    values: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _DOTENV_LINE.match(line)
        if match is None:
            raise ConfigError(
                f"{source}:{lineno}: {stripped!r} is not KEY=VALUE; write it as KEY=value or delete the line"
            )
        key, rest = match.groups()
        values[key] = _dotenv_value(rest, f"{source}:{lineno}")
    return values


def _dotenv_value(rest: str, where: str) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        chars: list[str] = []
        index = 1
        while index < len(rest):
            char = rest[index]
            if char == quote:
                tail = rest[index + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise ConfigError(f"{where}: text after the closing quote; put it inside the quotes or after a #")
                return "".join(chars)
            if quote == '"' and char == "\\" and index + 1 < len(rest):
                escaped = rest[index + 1]
                chars.append(_DOUBLE_QUOTED_ESCAPES.get(escaped, "\\" + escaped))
                index += 2
                continue
            chars.append(char)
            index += 1
        raise ConfigError(f"{where}: the {quote} quote is never closed; close it on the same line")
    # Unquoted: a # starts a comment only after whitespace, so URLs with fragments survive.
    return re.split(r"\s+#", rest, maxsplit=1)[0].strip()


def _read_toml(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file; pass the path of an existing TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        origin = "--config" if explicit else "config file"
        raise ConfigError(f"{origin} {path} cannot be read ({exc}); fix its permissions or encoding") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; fix the syntax at that line") from None


@attrs.frozen(kw_only=True)
class _Layers:
    toml: Mapping[str, Any]
    toml_path: Path | None
    env: Mapping[str, str]  # the .env values overlaid by the real environment
    from_dotenv: frozenset[str]
    env_file: Path | None
    cwd: Path
    home: Path

    def env_value(self, var: str, *, keep_empty: bool = False) -> str | None:
        raw = self.env.get(var)
        if raw is None or (not raw.strip() and not keep_empty):
            return None
        return raw

    def env_label(self, var: str) -> str:
        origin = f" (from {self.env_file})" if var in self.from_dotenv else ""
        return f"{var}={self.env.get(var, '')!r}{origin}"

    def toml_label(self, dotted: str, raw: object) -> str:
        return f"{dotted} = {raw!r} in {self.toml_path}"

    def convert_env(self, converter: Converter, var: str) -> Any:
        raw = self.env.get(var, "")
        try:
            return converter.convert(raw, _Ctx(base=self.cwd, home=self.home, from_text=True))
        except _Invalid:
            raise ConfigError(
                f"{self.env_label(var)} is not {converter.what}; set {var} to {converter.example}"
            ) from None

    def convert_toml(self, converter: Converter, dotted: str, raw: object) -> Any:
        base = self.toml_path.parent if self.toml_path else self.cwd
        try:
            return converter.convert(raw, _Ctx(base=base, home=self.home, from_text=False))
        except _Invalid:
            raise ConfigError(
                f"{self.toml_label(dotted, raw)} is not {converter.what}; set {dotted} to {converter.example}"
            ) from None

    def unknown_key(self, dotted: str, known: list[str]) -> ConfigError:
        leaf = dotted.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(leaf, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return ConfigError(f"{self.toml_path}: unknown key {dotted!r}{hint}; remove it or fix its spelling")

    def table(self, raw: object, dotted: str) -> Mapping[str, Any]:
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.toml_path}: {dotted} must be a table; write it as [{dotted}]")
        return raw


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
        if info.env and layers.env_value(info.env, keep_empty=info.converter.keep_empty) is not None:
            values[field.name] = layers.convert_env(info.converter, info.env)
    return values


def default_data_dir(workspace_root: Path, *, environ: Mapping[str, str], home: Path) -> Path:
    """``$XDG_STATE_HOME/lynkr/<workspace name>-<hash>``: one log per workspace, never inside the workspace."""
    state = environ.get("XDG_STATE_HOME", "")
    state_home = Path(state) if state and Path(state).is_absolute() else home / ".local" / "state"
    digest = hashlib.sha256(str(workspace_root).encode("utf-8")).hexdigest()[:8]
    return state_home / "lynkr" / f"{workspace_root.name or 'root'}-{digest}"


def load_config(*, environ: Mapping[str, str], cwd: Path, config_path: Path | None = None) -> Config:
    """Build the effective configuration.  Reads only the TOML and ``.env`` files; raises :class:`ConfigError`."""
    cwd = cwd.resolve()
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    env_file = cwd / ENV_FILE_NAME
    dotenv: dict[str, str] = {}
    if env_file.is_file():
        try:
            text = env_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{env_file} cannot be read ({exc}); fix its permissions or encoding") from None
        dotenv = parse_dotenv(text, source=str(env_file))
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
    toml = _read_toml(toml_path, explicit=config_path is not None) if toml_path else {}
    layers = attrs.evolve(early, toml=toml, toml_path=toml_path)

    values = _resolve_settings(Config, toml, "", layers)
    workspace_root = values.pop("workspace_root", cwd)
    if not workspace_root.is_dir():
        source = "WORKSPACE_ROOT" if layers.env_value("WORKSPACE_ROOT") else f"workspace_root in {toml_path}"
        raise ConfigError(f"{source} is {str(workspace_root)!r}, which is not a folder; set it to your project folder")
    data_dir = values.pop("data_dir", None) or default_data_dir(workspace_root, environ=merged, home=home)

    if values["mcp"].manifest_dirs is None:
        values["mcp"] = attrs.evolve(values["mcp"], manifest_dirs=(home / ".claude" / "mcp",))

    requested_provider = values.get("model_provider")
    drafts = _toml_providers(layers.table(toml.get("providers", {}), "providers"), layers)
    _overlay_env_providers(drafts, layers, requested=requested_provider)
    selected = _select_provider(drafts, requested_provider, layers)
    model_default = values.get("model_default")
    if selected and model_default and "main" not in drafts[selected].models:
        drafts[selected].models["main"] = model_default
    providers = {name: _finish_provider(draft, drafts, layers) for name, draft in drafts.items()}
    routes = _routes(toml.get("routes", []), providers, layers)
    values["model_provider"] = selected
    return Config(
        workspace_root=workspace_root,
        data_dir=data_dir,
        config_path=toml_path,
        env_file=layers.env_file,
        providers=providers,
        routes=routes,
        **values,
    )


# ---------------------------------------------------------------------------------------------------------------
# Providers: TOML tables, environment overlays, validation.


@attrs.define(kw_only=True)
class _Draft:
    name: str
    kind: str
    endpoint: str | None = None
    api_key: Secret | None = None
    models: dict[str, str] = attrs.field(factory=dict)
    default_model: str | None = None
    max_tokens: int | None = None
    fallback: tuple[str, ...] = ()
    options: dict[str, str] = attrs.field(factory=dict)
    http2: bool | None = None
    in_toml: bool = False
    env: _EnvProvider | None = None  # set when environment variables configured this provider


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
_MAX_TOKENS = _count(1, 32000, "tokens")
_NAME_LIST = Converter(what="a list of provider names", example='a list like ["backup"]', convert=_convert_str_list)


def _string_table(layers: _Layers, raw: object, dotted: str) -> dict[str, str]:
    table = layers.table(raw, dotted)
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, bool):
            out[key] = str(value).lower()
        elif isinstance(value, str | int | float):
            out[key] = str(value)
        else:
            raise ConfigError(
                f"{layers.toml_label(f'{dotted}.{key}', value)} is not a string; set {dotted}.{key} to a quoted string"
            )
    return out


def _toml_providers(tables: Mapping[str, Any], layers: _Layers) -> dict[str, _Draft]:
    kinds = registry.installed_kinds()
    drafts: dict[str, _Draft] = {}
    for name, raw in tables.items():
        prefix = f"providers.{name}"
        table = layers.table(raw, prefix)
        for key in table:
            if key not in _PROVIDER_KEYS:
                raise layers.unknown_key(f"{prefix}.{key}", list(_PROVIDER_KEYS))
        kind = table.get("kind", name if name in kinds else None)
        if kind is None:
            raise ConfigError(
                f"[{prefix}] in {layers.toml_path} has no kind; add kind = \"...\" with one of {', '.join(kinds)}"
            )
        if kind not in kinds:
            raise ConfigError(
                f"{layers.toml_label(prefix + '.kind', kind)} is not an installed provider kind; "
                f"use one of {', '.join(kinds)} or install the plugin that provides it"
            )
        draft = _Draft(name=name, kind=kind, in_toml=True)
        if "endpoint" in table:
            draft.endpoint = layers.convert_toml(STR, f"{prefix}.endpoint", table["endpoint"])
        draft.api_key = _toml_api_key(table, prefix, layers)
        if "models" in table:
            draft.models = _string_table(layers, table["models"], f"{prefix}.models")
        if "default_model" in table:
            draft.default_model = layers.convert_toml(STR, f"{prefix}.default_model", table["default_model"])
        if "max_tokens" in table:
            draft.max_tokens = layers.convert_toml(_MAX_TOKENS, f"{prefix}.max_tokens", table["max_tokens"])
        if "fallback" in table:
            draft.fallback = layers.convert_toml(_NAME_LIST, f"{prefix}.fallback", table["fallback"])
        if "options" in table:
            draft.options = _string_table(layers, table["options"], f"{prefix}.options")
        if "headers" in table:
            headers = _string_table(layers, table["headers"], f"{prefix}.headers")
            draft.options.update({HEADER_OPTION_PREFIX + key: value for key, value in headers.items()})
        if "http2" in table:
            draft.http2 = layers.convert_toml(BOOL, f"{prefix}.http2", table["http2"])
        drafts[name] = draft
    return drafts


def _toml_api_key(table: Mapping[str, Any], prefix: str, layers: _Layers) -> Secret | None:
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


def _overlay_env_providers(drafts: dict[str, _Draft], layers: _Layers, *, requested: str | None) -> None:
    """Build (or update) the provider named after each kind whose variables are set, or that is selected by kind."""
    for spec in _ENV_PROVIDERS:
        present = {var.target: value for var in spec.variables if (value := layers.env_value(var.var)) is not None}
        selected_by_kind = requested is not None and requested not in drafts and requested.lower() == spec.kind
        if not present and not selected_by_kind:
            continue
        draft = drafts.get(spec.kind)
        if draft is None:
            draft = drafts[spec.kind] = _Draft(name=spec.kind, kind=spec.kind)
        elif draft.kind != spec.kind:
            variables = ", ".join(layers.env_label(var.var) for var in spec.variables if var.target in present)
            raise ConfigError(
                f"[providers.{spec.kind}] in {layers.toml_path} has kind {draft.kind!r}, but {variables} configure "
                f"a {spec.kind} provider of that name; rename the TOML table"
            )
        draft.env = spec
        for target, value in present.items():
            value = value.strip()
            if target == "endpoint":
                draft.endpoint = value
            elif target == "api_key":
                draft.api_key = Secret(value)
            elif target == "model":
                draft.models["main"] = value
            else:
                draft.options[target.removeprefix("option:")] = value


def _select_provider(drafts: Mapping[str, _Draft], requested: str | None, layers: _Layers) -> str | None:
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
        choices = ", ".join(sorted(set(drafts) | set(_ENV_PROVIDER_BY_KIND)))
        raise ConfigError(f"{source} is not a configured provider; set MODEL_PROVIDER to one of {choices}")
    if len(drafts) > 1:
        names = ", ".join(sorted(drafts))
        raise ConfigError(
            f"several providers are configured ({names}) but MODEL_PROVIDER is not set; "
            "set MODEL_PROVIDER to the one requests should go to"
        )
    return next(iter(drafts), None)


def _missing(draft: _Draft, layers: _Layers, target: str, noun: str, example: str, toml_example: str) -> ConfigError:
    spec = draft.env or (_ENV_PROVIDER_BY_KIND.get(draft.kind) if draft.name == draft.kind else None)
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


def _needs_key(kind: str, endpoint: str) -> bool:
    if kind in (databricks.KIND, "azure-anthropic", azure_openai.KIND, openrouter.KIND):
        return True
    if kind in (openai.KIND, anthropic.KIND):
        # Only the vendor's own service insists; local compatible servers often take no key.
        default_host = urlsplit(_DEFAULT_ENDPOINTS[kind]).hostname
        return urlsplit(endpoint).hostname == default_host
    return False


def _finish_provider(draft: _Draft, drafts: Mapping[str, _Draft], layers: _Layers) -> ProviderConfig:
    spec = _ENV_PROVIDER_BY_KIND.get(draft.kind)
    endpoint = draft.endpoint or _DEFAULT_ENDPOINTS.get(draft.kind)
    if not endpoint:
        example = spec.endpoint_example if spec else "an https:// URL"
        raise _missing(draft, layers, "endpoint", "endpoint URL", example, f'"{example}"')
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"provider {draft.name!r} ({draft.kind}) endpoint {endpoint!r} is not an http(s) URL; "
            f"set it to a full URL like {spec.endpoint_example if spec else 'https://host/path'}"
        )
    if draft.api_key is None and _needs_key(draft.kind, endpoint):
        example = spec.key_example if spec else "your API key"
        raise _missing(draft, layers, "api_key", "API key", example, '"NAME_OF_THE_VARIABLE_HOLDING_THE_KEY"')
    deployment = draft.options.get("deployment")
    if draft.kind == azure_openai.KIND and not deployment and azure_openai.needs_deployment(endpoint):
        raise _missing(draft, layers, "option:deployment", "deployment", "your deployment name", '"my-gpt-4o"')
    if draft.kind == ollama.KIND and "main" not in draft.models and not draft.default_model:
        example = "a model you have pulled, like qwen2.5-coder"
        raise _missing(draft, layers, "model", "model", example, '"qwen2.5-coder"')
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


_ROUTE_KEYS: Final = ("provider", "model", "small", "thinking")


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
            )
        )
    return tuple(rules)
