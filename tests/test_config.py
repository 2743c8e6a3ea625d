from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lynkr.config import (
    Config,
    ConfigError,
    ProviderConfig,
    RouteRule,
    Secret,
    load_config,
    nothing_configured_hint,
)
from lynkr.envfile import read_env_file


def load(
    workspace: Path,
    env: dict[str, str] | None = None,
    *,
    toml: str | None = None,
    dotenv: str | None = None,
    config_path: Path | None = None,
) -> Config:
    """Load with a clean environment whose HOME is the test's tmp folder."""
    if toml is not None:
        (workspace / "lynkr.toml").write_text(toml)
    if dotenv is not None:
        (workspace / ".env").write_text(dotenv)
    environ = {"HOME": str(workspace), **(env or {})}
    return load_config(environ=environ, cwd=workspace, config_path=config_path)


def config_error(
    workspace: Path,
    env: dict[str, str] | None = None,
    *,
    toml: str | None = None,
    dotenv: str | None = None,
    config_path: Path | None = None,
) -> str:
    with pytest.raises(ConfigError) as caught:
        load(workspace, env, toml=toml, dotenv=dotenv, config_path=config_path)
    message = caught.value.message
    assert "\n" not in message, "config errors are one line"
    return message


DATABRICKS = {"DATABRICKS_API_BASE": "https://adb-1.azuredatabricks.net", "DATABRICKS_API_KEY": "dapi-secret-1"}


# --- defaults -------------------------------------------------------------------------------------------------


def test_nothing_configured_gives_typed_defaults_and_no_provider(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.model_provider is None
    assert config.provider is None
    assert dict(config.providers) == {}
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.tool_execution_mode == "client"
    assert config.connect_timeout_s == 10.0
    assert config.max_body_bytes == 32 * 1024 * 1024
    assert config.workspace_root == tmp_path.resolve()
    assert config.config_path is None and config.env_file is None
    assert config.policy.max_steps == 8 and config.policy.git_allow_push is False
    assert config.mcp.manifest_dirs == (tmp_path / ".claude" / "mcp",)
    assert config.prompt_cache.ttl_ms == 300_000


def test_data_dir_defaults_per_workspace_under_xdg_state_home(tmp_path: Path) -> None:
    one = tmp_path / "alpha"
    two = tmp_path / "nested" / "alpha"
    one.mkdir()
    two.mkdir(parents=True)
    state = tmp_path / "state"
    first = load_config(environ={"HOME": str(tmp_path), "XDG_STATE_HOME": str(state)}, cwd=one)
    second = load_config(environ={"HOME": str(tmp_path), "XDG_STATE_HOME": str(state)}, cwd=two)
    digest = hashlib.sha256(str(one.resolve()).encode()).hexdigest()[:8]
    assert first.data_dir == state / "lynkr" / f"alpha-{digest}"
    assert second.data_dir.parent == state / "lynkr"
    assert first.data_dir != second.data_dir, "same folder name in two places must not share a log"
    without_xdg = load_config(environ={"HOME": str(tmp_path)}, cwd=one)
    assert without_xdg.data_dir == tmp_path / ".local" / "state" / "lynkr" / f"alpha-{digest}"


# --- layering -------------------------------------------------------------------------------------------------


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    toml = "port = 8081\nidle_timeout_s = 33\nlog_level = 'debug'\n"
    assert load(tmp_path).port == 8080
    from_toml = load(tmp_path, toml=toml)
    assert (from_toml.port, from_toml.idle_timeout_s, from_toml.log_level) == (8081, 33.0, "debug")
    from_dotenv = load(tmp_path, dotenv="PORT=8082\nLYNKR_LOG_LEVEL=warning\n")
    assert (from_dotenv.port, from_dotenv.log_level) == (8082, "warning")
    assert from_dotenv.idle_timeout_s == 33.0, "a key only the TOML sets survives the later layers"
    from_env = load(tmp_path, {"PORT": "8083"})
    assert (from_env.port, from_env.log_level, from_env.idle_timeout_s) == (8083, "warning", 33.0)
    assert from_env.config_path == tmp_path / "lynkr.toml"
    assert from_env.env_file == tmp_path / ".env"


def test_dotenv_never_overrides_the_real_environment(tmp_path: Path) -> None:
    dotenv = "PORT=9002\nLYNKR_HOST=0.0.0.0\nLYNKR_MAX_RETRIES=4\n"
    config = load(tmp_path, {"PORT": "9001", "LYNKR_HOST": ""}, dotenv=dotenv)
    assert config.port == 9001
    assert config.host == "127.0.0.1", "an empty real variable still shadows .env, and empty means unset"
    assert config.max_retries == 4


def test_dotenv_syntax(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "export PLAIN=value",
            "SPACED = spaced value   # trailing comment",
            "URL=https://host/path#fragment",
            "SINGLE='literal \\n $HOME # not a comment'",
            'DOUBLE="line\\nbreak \\"quoted\\"" # comment',
            "EMPTY=",
        ]
    )
    (tmp_path / ".env").write_text(text)
    assert read_env_file(tmp_path / ".env", own=frozenset()) == {
        "PLAIN": "value",
        "SPACED": "spaced value",
        "URL": "https://host/path#fragment",
        "SINGLE": "literal \\n $HOME # not a comment",
        "DOUBLE": 'line\nbreak "quoted"',
        "EMPTY": "",
    }


def test_dotenv_lines_lynkr_cannot_read_are_skipped_with_one_warning_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dotenv = "\n".join(
        [
            "PORT=8090",
            "source ./scripts/env.sh",  # 2: a shell command
            "[section]",  # 3: an INI header
            "",
            "PROJECT_NAME='unterminated",  # 5: an unclosed quote
            'OTHER="a" b',  # 6: text after the closing quote
            "sk-live-pasted-on-its-own",  # 7: a key pasted without a name
            "LYNKR_LOG_LEVEL=debug",
        ]
    )
    with caplog.at_level("WARNING", logger="lynkr.config"):
        config = load(tmp_path, dotenv=dotenv)
    assert (config.port, config.log_level) == (8090, "debug"), "the readable lines around them still count"
    env_file = tmp_path / ".env"
    assert [record.getMessage() for record in caplog.records] == [
        f"{env_file}:2: this line is not KEY=value; lynkr skipped it",
        f"{env_file}:3: this line is not KEY=value; lynkr skipped it",
        f"{env_file}:5: the value of PROJECT_NAME cannot be read; lynkr skipped this line",
        f"{env_file}:6: the value of OTHER cannot be read; lynkr skipped this line",
        f"{env_file}:7: this line is not KEY=value; lynkr skipped it",
    ]
    assert "sk-live" not in caplog.text, "a warning never repeats what the line holds"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OK=1\nLYNKR_API_KEY='open\n", ".env:2: the line setting LYNKR_API_KEY cannot be read"),
        ('export OPENAI_API_KEY="a" b\n', ".env:1: the line setting OPENAI_API_KEY cannot be read"),
        ("PORT\n", ".env:1: the line setting PORT cannot be read"),
    ],
)
def test_a_broken_line_for_one_of_lynkrs_own_variables_still_stops_it(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = config_error(tmp_path, dotenv=text)
    assert message.startswith(f"{tmp_path}/{expected}; write it as ")


def test_a_broken_value_for_one_of_lynkrs_own_variables_gives_todays_message(tmp_path: Path) -> None:
    message = config_error(tmp_path, dotenv="# the project's own settings\nDEBUG\nPORT=eighty\n")
    assert message == (
        f"PORT='eighty' (from {tmp_path / '.env'}) is not a port number (0-65535); set PORT to a number like 8080"
    )


def test_toml_is_found_in_workspace_root_and_relative_paths_follow_their_source(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "lynkr.toml").write_text("[mcp]\nserver_manifest = 'mcp/servers.json'\n")
    config = load_config(
        environ={"HOME": str(tmp_path), "WORKSPACE_ROOT": "project", "LYNKR_DATA_DIR": "data"}, cwd=tmp_path
    )
    assert config.workspace_root == workspace
    assert config.config_path == workspace / "lynkr.toml"
    assert config.mcp.server_manifest == workspace / "mcp" / "servers.json", "TOML paths are relative to the file"
    assert config.data_dir == tmp_path / "data", "environment paths are relative to the working folder"


def test_explicit_config_path_wins_over_workspace_file(tmp_path: Path) -> None:
    (tmp_path / "lynkr.toml").write_text("port = 1111\n")
    other = tmp_path / "other.toml"
    other.write_text("port = 2222\n")
    config = load(tmp_path, config_path=Path("other.toml"))
    assert config.port == 2222
    assert config.config_path == other


def test_missing_explicit_config_path_is_an_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, config_path=tmp_path / "nope.toml")
    assert message.startswith(f"--config {tmp_path / 'nope.toml'}: no such file;")


# --- providers from the environment ---------------------------------------------------------------------------


def test_single_env_provider_is_selected_without_model_provider(tmp_path: Path) -> None:
    config = load(tmp_path, DATABRICKS)
    assert config.model_provider == "databricks"
    provider = config.provider
    assert provider is not None
    assert provider.kind == "databricks"
    assert provider.endpoint == "https://adb-1.azuredatabricks.net"
    assert provider.api_key == Secret("dapi-secret-1")


@pytest.mark.parametrize(
    ("env", "kind", "endpoint", "models", "options"),
    [
        (
            {**DATABRICKS, "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/anthropic/v1/messages"},
            "databricks",
            "https://adb-1.azuredatabricks.net",
            {},
            {"endpoint_path": "/serving-endpoints/anthropic/v1/messages"},
        ),
        (
            {
                "AZURE_ANTHROPIC_ENDPOINT": "https://r.services.ai.azure.com/anthropic/v1/messages",
                "AZURE_ANTHROPIC_API_KEY": "k",
                "AZURE_ANTHROPIC_VERSION": "2024-01-01",
            },
            "azure-anthropic",
            "https://r.services.ai.azure.com/anthropic/v1/messages",
            {},
            {"api_version": "2024-01-01"},
        ),
        (
            {
                "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com",
                "AZURE_OPENAI_API_KEY": "k",
                "AZURE_OPENAI_DEPLOYMENT": "gpt4o",
                "AZURE_OPENAI_API_VERSION": "2025-01-01-preview",
            },
            "azure-openai",
            "https://r.openai.azure.com",
            {},
            {"deployment": "gpt4o", "api_version": "2025-01-01-preview"},
        ),
        (
            {"OPENROUTER_API_KEY": "k", "OPENROUTER_MODEL": "anthropic/claude-sonnet-4.5"},
            "openrouter",
            "https://openrouter.ai/api/v1/chat/completions",
            {"main": "anthropic/claude-sonnet-4.5"},
            {},
        ),
        ({"OLLAMA_MODEL": "qwen2.5-coder"}, "ollama", "http://localhost:11434", {"main": "qwen2.5-coder"}, {}),
        (
            {"OPENAI_API_KEY": "k", "OPENAI_MODEL": "gpt-4.1"},
            "openai",
            "https://api.openai.com/v1/chat/completions",
            {"main": "gpt-4.1"},
            {},
        ),
        (
            {"OPENAI_ENDPOINT": "http://127.0.0.1:8000/v1", "OPENAI_MODEL": "local"},
            "openai",
            "http://127.0.0.1:8000/v1",
            {"main": "local"},
            {},
        ),
        (
            {"ANTHROPIC_UPSTREAM_API_KEY": "k", "ANTHROPIC_API_KEY": "for-claude-code-only"},
            "anthropic",
            "https://api.anthropic.com/v1/messages",
            {},
            {},
        ),
    ],
)
def test_env_variables_build_a_provider_per_kind(
    tmp_path: Path, env: dict[str, str], kind: str, endpoint: str, models: dict[str, str], options: dict[str, str]
) -> None:
    config = load(tmp_path, env)
    assert list(config.providers) == [kind]
    provider = config.providers[kind]
    assert (provider.kind, provider.endpoint) == (kind, endpoint)
    assert dict(provider.models) == models
    assert dict(provider.options) == options
    assert config.model_provider == kind
    if kind == "anthropic":
        assert provider.api_key == Secret("k"), "ANTHROPIC_API_KEY belongs to Claude Code, not the upstream"


def test_model_provider_selects_among_several_and_is_case_insensitive(tmp_path: Path) -> None:
    config = load(tmp_path, {**DATABRICKS, "OLLAMA_MODEL": "llama3", "MODEL_PROVIDER": "Ollama"})
    assert set(config.providers) == {"databricks", "ollama"}
    assert config.model_provider == "ollama"


def test_model_provider_alone_builds_a_provider_from_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, {"MODEL_PROVIDER": "ollama", "MODEL_DEFAULT": "qwen3"})
    provider = config.provider
    assert provider is not None
    assert provider.endpoint == "http://localhost:11434"
    assert dict(provider.models) == {"main": "qwen3"}


def test_model_default_fills_main_model_but_kind_model_variable_wins(tmp_path: Path) -> None:
    config = load(tmp_path, {**DATABRICKS, "MODEL_DEFAULT": "databricks-claude-opus-4-5"})
    assert config.model_default == "databricks-claude-opus-4-5"
    assert config.providers["databricks"].models["main"] == "databricks-claude-opus-4-5"
    specific = load(tmp_path, {"OPENAI_API_KEY": "k", "OPENAI_MODEL": "gpt-4.1", "MODEL_DEFAULT": "other"})
    assert specific.providers["openai"].models["main"] == "gpt-4.1"


# --- TOML providers and routes --------------------------------------------------------------------------------

MULTI = """
model_provider = "primary"
tool_execution_mode = "server"

[providers.primary]
kind = "databricks"
endpoint = "https://adb-1.azuredatabricks.net"
api_key_env = "MY_DATABRICKS_TOKEN"
models = { main = "databricks-claude-sonnet-4-5", small = "databricks-claude-haiku-4-5", \
           "claude-opus-*" = "databricks-claude-opus-4-5" }
max_tokens = 64000
fallback = ["backup", "local"]
options = { endpoint_path = "/serving-endpoints/anthropic/v1/messages" }
headers = { X-Team = "ml", Authorization-Extra = "hdr-secret" }

[providers.backup]
kind = "openrouter"
api_key = "sk-or-secret"
default_model = "anthropic/claude-sonnet-4.5"
http2 = false

[providers.ollama]
models = { main = "qwen2.5-coder" }

[[routes]]
model = "claude-haiku-*"
provider = "ollama"

[[routes]]
thinking = true
small = false
provider = "backup"
"""


def test_toml_multi_provider_with_fallback_and_routes(tmp_path: Path) -> None:
    config = load(tmp_path, {"MY_DATABRICKS_TOKEN": "dapi-from-env"}, toml=MULTI.replace('"local"', '"ollama"'))
    assert config.tool_execution_mode == "server"
    assert config.model_provider == "primary"
    primary = config.providers["primary"]
    assert primary == ProviderConfig(
        name="primary",
        kind="databricks",
        endpoint="https://adb-1.azuredatabricks.net",
        api_key=Secret("dapi-from-env"),
        models={
            "main": "databricks-claude-sonnet-4-5",
            "small": "databricks-claude-haiku-4-5",
            "claude-opus-*": "databricks-claude-opus-4-5",
        },
        max_tokens=64000,
        fallback=("backup", "ollama"),
        options={
            "endpoint_path": "/serving-endpoints/anthropic/v1/messages",
            "header.X-Team": "ml",
            "header.Authorization-Extra": "hdr-secret",
        },
    )
    backup = config.providers["backup"]
    assert (backup.kind, backup.endpoint, backup.http2) == (
        "openrouter",
        "https://openrouter.ai/api/v1/chat/completions",
        False,
    )
    assert config.providers["ollama"].kind == "ollama", "a table named after a kind needs no kind key"
    assert config.routes == (
        RouteRule(provider="ollama", model="claude-haiku-*"),
        RouteRule(provider="backup", small=False, thinking=True),
    )


def test_env_variables_layer_over_a_toml_provider_of_the_same_kind(tmp_path: Path) -> None:
    toml = '[providers.openai]\nendpoint = "http://127.0.0.1:9000/v1"\nmodels = { main = "toml-model", small = "s" }\n'
    config = load(tmp_path, {"OPENAI_MODEL": "env-model"}, toml=toml)
    provider = config.providers["openai"]
    assert provider.endpoint == "http://127.0.0.1:9000/v1"
    assert dict(provider.models) == {"main": "env-model", "small": "s"}


AZURE_ENV = {
    "MODEL_PROVIDER": "azure-openai",
    "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
    "AZURE_OPENAI_API_KEY": "azure-key",
    "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
}


def test_environment_form_sets_everything_a_provider_table_can(tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    env = {
        **AZURE_ENV,
        "AZURE_OPENAI_MAX_TOKENS": "16_384",
        "AZURE_OPENAI_SMALL_MODEL": "gpt-4o-mini",
        "AZURE_OPENAI_OPTIONS": '{"reasoning": true, "context_window": 128000, "deployment": "ignored"}',
        "AZURE_OPENAI_HTTP2": "false",
        "AZURE_OPENAI_FALLBACK": "ollama",
        "OLLAMA_MODEL": "qwen2.5-coder",
        "OLLAMA_MAX_TOKENS": "8192",
    }
    config = load(tmp_path, env)
    azure = config.providers["azure-openai"]
    assert azure.max_tokens == 16384
    assert dict(azure.models) == {"small": "gpt-4o-mini"}
    assert dict(azure.options) == {"reasoning": "true", "context_window": "128000", "deployment": "gpt-4o"}, (
        "a variable naming one option wins over the same option in <PREFIX>_OPTIONS"
    )
    assert (azure.http2, azure.fallback) == (False, ("ollama",))
    assert config.providers["ollama"].max_tokens == 8192


def test_max_tokens_alone_configures_nothing_new_but_must_be_valid(tmp_path: Path) -> None:
    config = load(tmp_path, {**AZURE_ENV, "AZURE_OPENAI_MAX_TOKENS": "16384"})
    assert list(config.providers) == ["azure-openai"]
    assert config_error(tmp_path, {**AZURE_ENV, "AZURE_OPENAI_MAX_TOKENS": "lots"}) == (
        "AZURE_OPENAI_MAX_TOKENS='lots' is not a whole number >= 1 of tokens; "
        "set AZURE_OPENAI_MAX_TOKENS to a number like 32000"
    )
    assert config_error(tmp_path, {**AZURE_ENV, "AZURE_OPENAI_OPTIONS": "reasoning=true"}) == (
        "AZURE_OPENAI_OPTIONS='reasoning=true' is not a JSON object of strings; "
        'set AZURE_OPENAI_OPTIONS to JSON like {"reasoning": "true"}'
    )
    assert "fallback names 'nowhere', which is not configured" in config_error(
        tmp_path, {**AZURE_ENV, "AZURE_OPENAI_FALLBACK": "nowhere"}
    )


def test_sources_say_which_layer_set_each_value(tmp_path: Path) -> None:
    toml = "idle_timeout_s = 33\n[policy]\nmax_steps = 3\n[providers.azure-openai]\nmax_tokens = 4096\n"
    env = {**AZURE_ENV, "PORT": "8083", "AZURE_OPENAI_OPTIONS": '{"reasoning": "true"}'}
    config = load(tmp_path, env, toml=toml, dotenv="LYNKR_LOG_LEVEL=debug\nAZURE_OPENAI_MAX_TOKENS=16384\n")
    explained = {name: (value, source) for name, value, source in config.explained()}
    assert explained["host"] == ("127.0.0.1", "default")
    assert explained["port"] == (8083, "environment (PORT)")
    assert explained["idle_timeout_s"] == (33.0, "lynkr.toml (idle_timeout_s)")
    assert explained["policy.max_steps"] == (3, "lynkr.toml (policy.max_steps)")
    assert explained["log_level"] == ("debug", ".env (LYNKR_LOG_LEVEL)")
    prefix = "providers.azure-openai."
    assert explained[prefix + "max_tokens"] == (16384, ".env (AZURE_OPENAI_MAX_TOKENS)"), ".env is over the TOML"
    assert explained[prefix + "endpoint"] == ("https://res.openai.azure.com", "environment (AZURE_OPENAI_ENDPOINT)")
    assert explained[prefix + "api_key"] == ("***", "environment (AZURE_OPENAI_API_KEY)")
    assert explained[prefix + "options.deployment"] == ("gpt-4o", "environment (AZURE_OPENAI_DEPLOYMENT)")
    assert explained[prefix + "options.reasoning"] == ("true", "environment (AZURE_OPENAI_OPTIONS)")
    assert explained[prefix + "http2"] == (None, "default")
    assert "azure-key" not in repr(config.explained())


def test_sources_of_a_provider_built_from_defaults_and_model_default(tmp_path: Path) -> None:
    config = load(tmp_path, {"MODEL_PROVIDER": "ollama", "MODEL_DEFAULT": "llama3"})
    explained = {name: source for name, _, source in config.explained()}
    assert explained["providers.ollama.endpoint"] == "default"
    assert explained["providers.ollama.models.main"] == "environment (MODEL_DEFAULT)"
    assert explained["providers.ollama.kind"] == "environment (MODEL_PROVIDER)"


def test_configuration_never_imports_the_provider_modules_and_they_never_import_it() -> None:
    """The import circle is gone: kinds declare settings with lynkr.settings; config reaches them via the registry."""
    probe = (
        "import sys, lynkr.config; "
        "print(sorted(name for name in sys.modules if name.startswith('lynkr.providers')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    providers = Path(__file__).resolve().parent.parent / "lynkr" / "providers"
    for module in providers.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "lynkr.config", f"{module.name} imports lynkr.config"
            if isinstance(node, ast.Import):
                assert all(alias.name != "lynkr.config" for alias in node.names), module.name


def test_each_builtin_kind_declares_its_settings_in_its_own_module() -> None:
    from lynkr.providers import registry

    assert list(registry.BUILTIN_SETTINGS) == list(registry.BUILTIN_KINDS)
    for kind, settings in registry.BUILTIN_SETTINGS.items():
        module = sys.modules[registry.BUILTIN_KINDS[kind].__module__]
        assert getattr(module, "SETTINGS") is settings, kind
        targets = [var.target for var in settings.all_variables]
        assert len(targets) == len(set(targets)), f"{kind} sets one field from two variables"
        every_field = {"endpoint", "api_key", "model", "small_model", "max_tokens", "options", "http2", "fallback"}
        assert every_field <= set(targets), kind


def test_generic_variables_alone_call_no_provider_into_being(tmp_path: Path) -> None:
    shell = {"OLLAMA_API_KEY": "for-ollama-cloud", "OPENAI_MAX_TOKENS": "4096"}
    assert dict(load(tmp_path, shell).providers) == {}
    with_ollama = load(tmp_path, {**shell, "OLLAMA_MODEL": "qwen3"}).providers["ollama"]
    assert with_ollama.api_key is not None and with_ollama.api_key.reveal() == "for-ollama-cloud"


# --- secrets --------------------------------------------------------------------------------------------------


def test_secret_masks_itself_everywhere_but_reveal() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == "hunter2"
    assert "hunter2" not in repr(ProviderConfig(name="p", kind="openai", endpoint="http://x", api_key=secret))


def test_masked_and_repr_hide_every_secret_and_secrets_lists_them(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"MY_DATABRICKS_TOKEN": "dapi-from-env", "LYNKR_API_KEY": "client-key"},
        toml=MULTI.replace('"local"', '"ollama"'),
    )
    secrets = {"dapi-from-env", "client-key", "sk-or-secret", "hdr-secret"}
    assert config.secrets() == secrets
    masked = config.masked()
    text = json.dumps(masked)  # JSON-able by contract
    for value in secrets:
        assert value not in text
        assert value not in repr(config)
    assert masked["api_key"] == "***"
    assert masked["providers"]["primary"]["api_key"] == "***"
    assert masked["providers"]["primary"]["options"]["header.Authorization-Extra"] == "***"
    assert masked["providers"]["primary"]["options"]["header.X-Team"] == "ml"
    assert masked["port"] == 8080 and masked["policy"]["max_steps"] == 8
    assert masked["workspace_root"] == str(tmp_path.resolve())
    assert masked["routes"][0] == {
        "provider": "ollama", "model": "claude-haiku-*", "small": None, "thinking": None, "min_input_tokens": None
    }


# --- typed policy, MCP and cache variables --------------------------------------------------------------------


def test_policy_mcp_and_cache_variables_are_typed(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {
            "POLICY_MAX_STEPS": "3",
            "POLICY_MAX_TOOL_CALLS": "40",
            "POLICY_DISALLOWED_TOOLS": "Bash, WebFetch ,",
            "POLICY_GIT_ALLOW_PUSH": "true",
            "POLICY_GIT_ALLOW_PULL": "false",
            "POLICY_GIT_COMMIT_REGEX": "^(feat|fix): ",
            "POLICY_FILE_BLOCKED_PATHS": "",
            "POLICY_SAFE_COMMANDS_CONFIG": '{"allow": ["ls"]}',
            "MCP_SERVER_MANIFEST": "~/mcp.json",
            "MCP_MANIFEST_DIRS": "",
            "MCP_SANDBOX_ENABLED": "no",
            "MCP_TIMEOUT_MS": "1500",
            "MCP_SANDBOX_PERMISSION_MODE": "DENY",
            "PROMPT_CACHE_ENABLED": "0",
            "PROMPT_CACHE_TTL_MS": "1000",
            "PROMPT_CACHE_MAX_ENTRIES": "5",
        },
    )
    policy, mcp, cache = config.policy, config.mcp, config.prompt_cache
    assert (policy.max_steps, policy.max_tool_calls) == (3, 40)
    assert policy.disallowed_tools == ("Bash", "WebFetch")
    assert (policy.git_allow_push, policy.git_allow_pull, policy.git_allow_commit) == (True, False, True)
    assert policy.git_commit_regex == "^(feat|fix): "
    assert policy.file_blocked_paths == (), "an empty list variable means an empty list"
    assert policy.safe_commands_config == {"allow": ["ls"]}
    assert mcp.server_manifest == tmp_path / "mcp.json"
    assert mcp.manifest_dirs == ()
    assert mcp.sandbox_enabled is False
    assert mcp.timeout_ms == 1500
    assert mcp.permission_mode == "deny"
    assert (cache.enabled, cache.ttl_ms, cache.max_entries) == (False, 1000, 5)


def test_group_tables_in_toml(tmp_path: Path) -> None:
    toml = "[policy]\nmax_steps = 2\ndisallowed_tools = ['Bash']\n[prompt_cache]\nenabled = false\n"
    config = load(tmp_path, toml=toml)
    assert config.policy.max_steps == 2
    assert config.policy.disallowed_tools == ("Bash",)
    assert config.prompt_cache.enabled is False


# --- errors ---------------------------------------------------------------------------------------------------


def test_port_error_names_problem_and_fix(tmp_path: Path) -> None:
    assert config_error(tmp_path, {"PORT": "abc"}) == (
        "PORT='abc' is not a port number (0-65535); set PORT to a number like 8080"
    )


def test_port_zero_asks_for_any_free_port(tmp_path: Path) -> None:
    assert load(tmp_path, {"PORT": "0"}).port == 0


def test_error_from_dotenv_says_so(tmp_path: Path) -> None:
    message = config_error(tmp_path, dotenv="PORT=70000\n")
    assert message == (
        f"PORT='70000' (from {tmp_path / '.env'}) is not a port number (0-65535); set PORT to a number like 8080"
    )


ERROR_CASES = [
    pytest.param(
        {"MODEL_PROVIDER": "nope"},
        None,
        "MODEL_PROVIDER='nope' is not a configured provider; set MODEL_PROVIDER to one of",
        id="unknown-provider",
    ),
    pytest.param(
        {"MODEL_PROVIDER": "databricks"},
        None,
        "provider 'databricks' (databricks) has no endpoint URL; set DATABRICKS_API_BASE to",
        id="no-endpoint",
    ),
    pytest.param(
        {"DATABRICKS_API_BASE": "https://adb-1.azuredatabricks.net"},
        None,
        "has no API key; set DATABRICKS_API_KEY to a Databricks personal access token",
        id="no-key",
    ),
    pytest.param(
        {"MODEL_PROVIDER": "openrouter"},
        None,
        "provider 'openrouter' (openrouter) has no API key; set OPENROUTER_API_KEY",
        id="openrouter-no-key",
    ),
    pytest.param(
        {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": "k"},
        None,
        "has no deployment; set AZURE_OPENAI_DEPLOYMENT",
        id="no-deployment",
    ),
    pytest.param(
        {"MODEL_PROVIDER": "ollama"},
        None,
        "provider 'ollama' (ollama) has no model; set OLLAMA_MODEL to a model you have pulled",
        id="ollama-no-model",
    ),
    pytest.param(
        {"OPENAI_ENDPOINT": "localhost:8000", "OPENAI_MODEL": "m"},
        None,
        "endpoint 'localhost:8000' is not an http(s) URL; set it to a full URL",
        id="bad-url",
    ),
    pytest.param(
        {**DATABRICKS, "OLLAMA_MODEL": "m"},
        None,
        "several providers are configured (databricks, ollama) but MODEL_PROVIDER is not set",
        id="ambiguous",
    ),
    pytest.param(
        {"TOOL_EXECUTION_MODE": "both"},
        None,
        "TOOL_EXECUTION_MODE='both' is not one of client, server; set TOOL_EXECUTION_MODE to client or server",
        id="tool-mode",
    ),
    pytest.param(
        {"LYNKR_CONNECT_TIMEOUT_S": "-1"},
        None,
        "LYNKR_CONNECT_TIMEOUT_S='-1' is not a positive number of seconds; "
        "set LYNKR_CONNECT_TIMEOUT_S to a number like 10",
        id="negative-timeout",
    ),
    pytest.param(
        {"LYNKR_MAX_RETRIES": "-2"},
        None,
        "LYNKR_MAX_RETRIES='-2' is not a whole number >= 0",
        id="negative-retries",
    ),
    pytest.param(
        {"POLICY_GIT_COMMIT_REGEX": "("},
        None,
        "POLICY_GIT_COMMIT_REGEX='(' is not a valid regular expression",
        id="regex",
    ),
    pytest.param(
        {"POLICY_GIT_ALLOW_PUSH": "maybe"},
        None,
        "POLICY_GIT_ALLOW_PUSH='maybe' is not true or false",
        id="bool",
    ),
    pytest.param(
        {"WORKSPACE_ROOT": "/does/not/exist"},
        None,
        "WORKSPACE_ROOT is '/does/not/exist', which is not a folder; set it to your project folder",
        id="workspace",
    ),
    pytest.param(
        {},
        "port = 80\nprot = 81\n",
        "unknown key 'prot' (did you mean 'port'?); remove it or fix its spelling",
        id="unknown-key",
    ),
    pytest.param(
        {},
        "port = 'x'\n",
        "port = 'x' in {toml} is not a port number (0-65535); set port to a number like 8080",
        id="toml-type",
    ),
    pytest.param(
        {},
        "[providers.a]\nkind = 'openai'\nendpoint = 'http://x'\nfallback = ['b']\n",
        "providers.a.fallback names 'b', which is not configured; list other providers (none are configured)",
        id="fallback-unknown",
    ),
    pytest.param(
        {},
        "[providers.a]\nkind = 'openai'\nendpoint = 'http://x'\nfallback = ['a']\n",
        "providers.a.fallback names itself",
        id="fallback-self",
    ),
    pytest.param(
        {},
        "[providers.a]\nkind = 'gemini'\n",
        "providers.a.kind = 'gemini' in {toml} is not an installed provider kind; "
        "use one of databricks, azure-anthropic, azure-openai, openrouter, ollama, openai, anthropic",
        id="kind",
    ),
    pytest.param(
        {},
        "[providers.a]\nendpoint = 'http://x'\n",
        "[providers.a] in {toml} has no kind; add kind = \"...\" with one of",
        id="no-kind",
    ),
    pytest.param(
        {},
        "[providers.a]\nkind = 'databricks'\nendpoint = 'https://x'\napi_key_env = 'NOT_SET_ANYWHERE'\n",
        "providers.a.api_key_env = 'NOT_SET_ANYWHERE' in {toml}, but NOT_SET_ANYWHERE is not set; "
        "export NOT_SET_ANYWHERE",
        id="api-key-env",
    ),
    pytest.param(
        {},
        "[providers.a]\nkind = 'databricks'\nendpoint = 'https://x'\n",
        "provider 'a' (databricks) has no API key; "
        'add api_key_env = "NAME_OF_THE_VARIABLE_HOLDING_THE_KEY" to [providers.a] in {toml}',
        id="toml-no-key",
    ),
    pytest.param(
        {"OLLAMA_MODEL": "m"},
        "[[routes]]\nmodel = '*'\nprovider = 'elsewhere'\n",
        "routes[1].provider = 'elsewhere' in {toml} is not a configured provider; use one of ollama",
        id="route",
    ),
    pytest.param({}, "[[routes]]\nmodel = '*'\n", "routes[1] in {toml} has no provider", id="route-no-provider"),
    pytest.param(
        {},
        "[policy]\nmax_steps = 0\n",
        "policy.max_steps = 0 in {toml} is not a whole number >= 1",
        id="group-range",
    ),
]


@pytest.mark.parametrize(("env", "toml", "expected"), ERROR_CASES)
def test_invalid_input_gives_one_line_error_with_fix(
    tmp_path: Path, env: dict[str, str], toml: str | None, expected: str
) -> None:
    message = config_error(tmp_path, env, toml=toml)
    assert expected.format(toml=tmp_path / "lynkr.toml") in message
    assert ";" in message, "every message names the fix after the problem"


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, toml="port = 8080\nhost = \n")
    assert message.startswith(f"{tmp_path / 'lynkr.toml'}: invalid TOML:")
    assert "line 2" in message


# --- documentation helpers ------------------------------------------------------------------------------------


def test_describe_covers_every_setting_and_provider_variable() -> None:
    rows = Config.describe()
    by_env = {env: (name, default, doc) for name, env, default, doc in rows}
    for var in (
        "PORT",
        "LYNKR_HOST",
        "WORKSPACE_ROOT",
        "LYNKR_DATA_DIR",
        "MODEL_PROVIDER",
        "TOOL_EXECUTION_MODE",
        "LYNKR_API_KEY",
        "LYNKR_SHUTDOWN_GRACE_S",
        "POLICY_GIT_ALLOW_PUSH",
        "MCP_SERVER_MANIFEST",
        "MCP_MANIFEST_DIRS",
        "MCP_SANDBOX_ENABLED",
        "PROMPT_CACHE_TTL_MS",
        "DATABRICKS_ENDPOINT_PATH",
        "AZURE_OPENAI_DEPLOYMENT",
        "OLLAMA_ENDPOINT",
        "ANTHROPIC_UPSTREAM_API_KEY",
    ):
        assert var in by_env, var
    assert by_env["PORT"] == ("port", "8080", "Port to listen on.")
    assert by_env["POLICY_GIT_ALLOW_PUSH"][:2] == ("policy.git_allow_push", "false")
    assert by_env["OLLAMA_ENDPOINT"][:2] == ("providers.ollama.endpoint", "http://localhost:11434")
    assert by_env["<PREFIX>_MAX_TOKENS"][:2] == ("providers.<kind>.max_tokens", "unset")
    assert by_env["<PREFIX>_OPTIONS"][0] == "providers.<kind>.options"
    assert by_env["LYNKR_ALLOWED_ORIGINS"][:2] == ("guard.allowed_origins", "unset")
    assert all(doc for _, _, _, doc in rows)
    assert len({name for name, _, _, _ in rows}) == len(rows)


def test_nothing_configured_hint_names_the_variables() -> None:
    hint = nothing_configured_hint()
    assert "\n" not in hint
    for word in ("MODEL_PROVIDER", "DATABRICKS_API_BASE", "OLLAMA_MODEL", "[providers.<name>]"):
        assert word in hint


def test_passthrough_is_the_original_projects_name_for_client_mode(tmp_path: Path) -> None:
    assert load(tmp_path, {"TOOL_EXECUTION_MODE": "passthrough"}).tool_execution_mode == "client"
    assert load(tmp_path, {"TOOL_EXECUTION_MODE": "Server"}).tool_execution_mode == "server"
