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
    what: str  # "a port number (1-65535)": completes "X='abc' is not ..."
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


PORT = _int(1, 65535, what="a port number (1-65535)", example="a number like 8080")
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
_GROUP: Final = "lynkr.group"


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
    enabled: bool = setting(True, env="PROMPT_CACHE_ENABLED", doc="Serve repeated prompts from the cache.", converter=BOOL)
    ttl_ms: int = setting(
        300_000, env="PROMPT_CACHE_TTL_MS", doc="How long a cached response stays fresh.", converter=_count(1, 300000, "ms")
    )
    max_entries: int = setting(
        64, env="PROMPT_CACHE_MAX_ENTRIES", doc="Most responses kept in the cache.", converter=_count(0, 64)
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
    git_allow_commit: bool = setting(True, env="POLICY_GIT_ALLOW_COMMIT", doc="Allow the git commit tool.", converter=BOOL)
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
        True, env="POLICY_SAFE_COMMANDS_ENABLED", doc="Check shell commands against the safe-command rules.", converter=BOOL
    )
    safe_commands_config: JsonTree | None = setting(
        None, env="POLICY_SAFE_COMMANDS_CONFIG", doc="Safe-command rules as JSON.", converter=JSON
    )


@attrs.frozen(kw_only=True)
class McpConfig:
    server_manifest: Path | None = setting(
        None, env="MCP_SERVER_MANIFEST", doc="A JSON manifest of MCP servers to start.", converter=PATH
    )
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
    sandbox_image: str | None = setting(None, env="MCP_SANDBOX_IMAGE", doc="Container image for MCP servers.", converter=STR)
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
        "bridge", env="MCP_SANDBOX_NETWORK_MODE", doc="Container network mode when networking is allowed.", converter=STR
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
    sandbox_user: str | None = setting(None, env="MCP_SANDBOX_USER", doc="User to run as in the container.", converter=STR)
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
    sandbox_memory_limit: str = setting("512m", env="MCP_SANDBOX_MEMORY_LIMIT", doc="Container memory limit.", converter=STR)
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
    options: Mapping[str, str] = attrs.field(factory=dict)
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
            "options": {key: MASK if _secret_option(key) else value for key, value in self.options.items()},
            "http2": self.http2,
        }

    def secrets(self) -> frozenset[str]:
        found = {value for key, value in self.options.items() if _secret_option(key) and value}
        if self.api_key and self.api_key.reveal():
            found.add(self.api_key.reveal())
        return frozenset(found)


_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "cookie")


def _secret_option(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


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
            _ProviderVar(var="AZURE_OPENAI_ENDPOINT", target="endpoint", doc="https://<resource>.openai.azure.com (or .../openai/v1)."),
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
            _ProviderVar(var="OPENROUTER_MODEL", target="model", doc="OpenRouter model, e.g. anthropic/claude-sonnet-4.5."),
            _ProviderVar(
                var="OPENROUTER_ENDPOINT", target="endpoint", doc="OpenRouter chat URL.", default=openrouter.DEFAULT_ENDPOINT
            ),
        ),
        endpoint_example=openrouter.DEFAULT_ENDPOINT,
        key_example="your OpenRouter key (sk-or-...)",
    ),
    _EnvProvider(
        kind=ollama.KIND,
        variables=(
            _ProviderVar(var="OLLAMA_ENDPOINT", target="endpoint", doc="Ollama server URL.", default=ollama.DEFAULT_ENDPOINT),
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
                var="ANTHROPIC_UPSTREAM_URL", target="endpoint", doc="Anthropic Messages URL.", default=anthropic.DEFAULT_ENDPOINT
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
    spec.kind: var.default for spec in _ENV_PROVIDERS for var in spec.variables if var.target == "endpoint" and var.default
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


def _settings(default_host: str = "127.0.0.1") -> None:
    """(Kept out of the class body: nothing.)"""


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
    config_path: Path | None = attrs.field(default=None, metadata={_GROUP: None})
    env_file: Path | None = attrs.field(default=None, metadata={_GROUP: None})
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
    providers: Mapping[str, ProviderConfig] = attrs.field(factory=dict, metadata={_GROUP: None})
    routes: tuple[RouteRule, ...] = attrs.field(default=(), metadata={_GROUP: None})
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
        5, env="LYNKR_SUPERVISOR_MAX_RESTARTS", doc="Crashes within the window before escalating.", converter=_count(0, 5)
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
    log_level: str = setting(
        "info",
        env="LYNKR_LOG_LEVEL",
        doc="Logging level.",
        converter=_choice("debug", "info", "warning", "error", "critical"),
    )
    prompt_cache: PromptCacheConfig = _group(PromptCacheConfig, "Prompt cache.")
    policy: PolicyConfig = _group(PolicyConfig, "Limits on server-side tool use.")
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
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    if default is None or default == ():
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    return str(default)


def _walk_fields(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, attrs.Attribute[Any], SettingInfo]]:
    for field in attrs.fields(cls):
        if _GROUP in field.metadata:
            if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                yield from _walk_fields(field.default.factory, f"{prefix}{field.name}.")
            continue
        yield f"{prefix}{field.name}", field, field.metadata[_SETTING]


def _walk_settings(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, SettingInfo]]:
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if _GROUP in field.metadata:
            if attrs.has(type(value)):
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
