from __future__ import annotations

import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lynkr.config import ProviderConfig, Secret, load_config
from lynkr.providers import Adapter, HttpAdapter, adapter_for, installed_kinds
from lynkr.providers.base import looks_like_reasoning_model, map_model
from lynkr.providers.registry import ENTRY_POINT_GROUP, UnknownProviderKind

PLUGIN_SOURCE = Path(__file__).parent / "plugin_example"


def adapter_from_env(tmp_path: Path, env: dict[str, str]) -> Adapter:
    config = load_config(environ={"HOME": str(tmp_path), **env}, cwd=tmp_path)
    assert config.provider is not None
    return adapter_for(config.provider)


CLIENT_HEADERS = {"anthropic-version": "2023-01-01", "Anthropic-Beta": "tools-2024", "x-api-key": "client-own-key"}


@pytest.mark.parametrize(
    ("env", "wire", "url", "count_tokens", "expected_headers"),
    [
        pytest.param(
            {"DATABRICKS_API_BASE": "https://adb-1.azuredatabricks.net/", "DATABRICKS_API_KEY": "dapi1"},
            "openai",
            "https://adb-1.azuredatabricks.net/serving-endpoints/databricks-claude-sonnet-4-5/invocations",
            None,
            {"authorization": "Bearer dapi1"},
            id="databricks-default-path",
        ),
        pytest.param(
            {
                "DATABRICKS_API_BASE": "https://adb-1.azuredatabricks.net",
                "DATABRICKS_API_KEY": "dapi1",
                "DATABRICKS_ENDPOINT_PATH": "serving-endpoints/anthropic/v1/messages",
            },
            "anthropic",
            "https://adb-1.azuredatabricks.net/serving-endpoints/anthropic/v1/messages",
            None,  # Databricks' Anthropic path answers 404 to count_tokens
            {"authorization": "Bearer dapi1", "anthropic-version": "2023-01-01", "anthropic-beta": "tools-2024"},
            id="databricks-anthropic-path",
        ),
        pytest.param(
            {
                "AZURE_ANTHROPIC_ENDPOINT": "https://r.services.ai.azure.com/anthropic/v1/messages",
                "AZURE_ANTHROPIC_API_KEY": "az1",
            },
            "anthropic",
            "https://r.services.ai.azure.com/anthropic/v1/messages",
            "https://r.services.ai.azure.com/anthropic/v1/messages/count_tokens",
            {"x-api-key": "az1", "anthropic-version": "2023-01-01", "anthropic-beta": "tools-2024"},
            id="azure-anthropic",
        ),
        pytest.param(
            {
                "AZURE_ANTHROPIC_ENDPOINT": "https://r.services.ai.azure.com",
                "AZURE_ANTHROPIC_API_KEY": "az1",
                "AZURE_ANTHROPIC_VERSION": "2025-05-05",
            },
            "anthropic",
            "https://r.services.ai.azure.com/anthropic/v1/messages",
            "https://r.services.ai.azure.com/anthropic/v1/messages/count_tokens",
            {"x-api-key": "az1", "anthropic-version": "2025-05-05", "anthropic-beta": "tools-2024"},
            id="azure-anthropic-pinned-version",
        ),
        pytest.param(
            {
                "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/",
                "AZURE_OPENAI_API_KEY": "aoai",
                "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
                "AZURE_OPENAI_API_VERSION": "2025-01-01-preview",
            },
            "openai",
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview",
            None,
            {"api-key": "aoai"},
            id="azure-openai-deployments",
        ),
        pytest.param(
            {
                "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/openai/v1/",
                "AZURE_OPENAI_API_KEY": "aoai",
                "AZURE_OPENAI_DEPLOYMENT": "gpt-5-mini",
            },
            "openai",
            "https://r.openai.azure.com/openai/v1/chat/completions",
            None,
            {"api-key": "aoai"},
            id="azure-openai-v1",
        ),
        pytest.param(
            {"OPENROUTER_API_KEY": "or1", "OPENROUTER_MODEL": "anthropic/claude-sonnet-4.5"},
            "openai",
            "https://openrouter.ai/api/v1/chat/completions",
            None,
            {"authorization": "Bearer or1", "HTTP-Referer": "http://localhost", "X-Title": "lynkr"},
            id="openrouter",
        ),
        pytest.param(
            {"OLLAMA_ENDPOINT": "http://127.0.0.1:11434/", "OLLAMA_MODEL": "qwen2.5-coder"},
            "ollama",
            "http://127.0.0.1:11434/api/chat",
            None,
            {},
            id="ollama",
        ),
        pytest.param(
            {"OPENAI_API_KEY": "sk1", "OPENAI_MODEL": "gpt-4.1"},
            "openai",
            "https://api.openai.com/v1/chat/completions",
            None,
            {"authorization": "Bearer sk1"},
            id="openai",
        ),
        pytest.param(
            {"OPENAI_ENDPOINT": "http://127.0.0.1:8000/v1", "OPENAI_MODEL": "local"},
            "openai",
            "http://127.0.0.1:8000/v1/chat/completions",
            None,
            {},
            id="openai-compatible-base",
        ),
        pytest.param(
            {"ANTHROPIC_UPSTREAM_URL": "https://gateway.example/v1", "ANTHROPIC_UPSTREAM_API_KEY": "ant1"},
            "anthropic",
            "https://gateway.example/v1/messages",
            "https://gateway.example/v1/messages/count_tokens",
            {"x-api-key": "ant1", "anthropic-version": "2023-01-01", "anthropic-beta": "tools-2024"},
            id="anthropic",
        ),
    ],
)
def test_env_provider_builds_url_wire_and_headers(
    tmp_path: Path,
    env: dict[str, str],
    wire: str,
    url: str,
    count_tokens: str | None,
    expected_headers: dict[str, str],
) -> None:
    adapter = adapter_from_env(tmp_path, env)
    assert adapter.wire == wire
    assert adapter.messages_url(stream=True) == adapter.messages_url(stream=False) == url
    assert adapter.count_tokens_url() == count_tokens
    headers = adapter.headers(CLIENT_HEADERS)
    assert headers == {"content-type": "application/json", **expected_headers}
    assert "client-own-key" not in headers.values(), "the client's key for lynkr never reaches an upstream"


def test_anthropic_version_defaults_when_the_client_sends_none(tmp_path: Path) -> None:
    adapter = adapter_from_env(tmp_path, {"ANTHROPIC_UPSTREAM_API_KEY": "ant1"})
    headers = adapter.headers({})
    assert headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in headers


def test_full_urls_are_used_as_given(tmp_path: Path) -> None:
    openai = adapter_from_env(
        tmp_path, {"OPENAI_ENDPOINT": "http://127.0.0.1:9/x/chat/completions", "OPENAI_MODEL": "m"}
    )
    assert openai.messages_url(stream=True) == "http://127.0.0.1:9/x/chat/completions"
    azure = adapter_from_env(
        tmp_path,
        {
            "AZURE_OPENAI_ENDPOINT": (
                "https://r.openai.azure.com/openai/deployments/d1/chat/completions?api-version=2024-02-01"
            ),
            "AZURE_OPENAI_API_KEY": "k",
        },
    )
    assert azure.messages_url(stream=True).endswith("/openai/deployments/d1/chat/completions?api-version=2024-02-01")
    databricks = adapter_from_env(
        tmp_path,
        {"DATABRICKS_API_BASE": "https://adb-1.azuredatabricks.net/serving-endpoints", "DATABRICKS_API_KEY": "k"},
    )
    assert databricks.messages_url(stream=False) == (
        "https://adb-1.azuredatabricks.net/serving-endpoints/chat/completions"
    )
    assert databricks.wire == "openai"


def test_azure_openai_uses_the_deployment_as_model_unless_mapped(tmp_path: Path) -> None:
    adapter = adapter_from_env(
        tmp_path,
        {
            "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/openai/v1",
            "AZURE_OPENAI_API_KEY": "k",
            "AZURE_OPENAI_DEPLOYMENT": "my-o3",
        },
    )
    assert adapter.upstream_model("claude-sonnet-4-5", small=False) == "my-o3"
    assert adapter.reasoning_model("my-o3") is False, "a deployment name says nothing; the option decides"
    provider = ProviderConfig(
        name="a",
        kind="azure-openai",
        endpoint="https://r.openai.azure.com",
        options={"deployment": "x", "reasoning": "true"},
    )
    assert adapter_for(provider).reasoning_model("x") is True


def test_model_map_order_exact_then_glob_then_small_main_then_default() -> None:
    models = {
        "claude-opus-4-5": "exact-opus",
        "claude-haiku-*": "glob-haiku",
        "small": "small-model",
        "main": "main-model",
    }
    assert map_model(models, "default", "claude-opus-4-5", small=True) == "exact-opus"
    assert map_model(models, "default", "claude-haiku-4-5", small=False) == "glob-haiku"
    assert map_model(models, "default", "claude-sonnet-4-5", small=True) == "small-model"
    assert map_model(models, "default", "claude-sonnet-4-5", small=False) == "main-model"
    assert map_model({"small": "s"}, "default", "claude-sonnet-4-5", small=False) == "default"
    assert map_model({"main": "m"}, None, "claude-haiku-4-5", small=True) == "m", "no small model: use main"
    assert map_model({}, None, "claude-sonnet-4-5", small=False) == "claude-sonnet-4-5"


def test_adapter_applies_its_providers_model_map(tmp_path: Path) -> None:
    adapter = adapter_from_env(tmp_path, {"OLLAMA_MODEL": "qwen2.5-coder"})
    assert adapter.upstream_model("claude-sonnet-4-5-20250929", small=False) == "qwen2.5-coder"


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("o1", True),
        ("o1-preview", True),
        ("o3-mini", True),
        ("o4-mini-2025-04-16", True),
        ("gpt-5", True),
        ("gpt-5-mini", True),
        ("openai/o3", True),
        ("openai/gpt-5.1", True),
        ("gpt-4o", False),
        ("gpt-4.1-mini", False),
        ("claude-sonnet-4-5", False),
        ("ollama", False),
        ("llama3.1:8b", False),
        ("qwen2.5-coder", False),
    ],
)
def test_reasoning_models_are_recognised_by_name(model: str, reasoning: bool) -> None:
    assert looks_like_reasoning_model(model) is reasoning


def test_static_headers_limits_and_http2_come_from_configuration() -> None:
    provider = ProviderConfig(
        name="edge",
        kind="openai",
        endpoint="https://llm.internal/v1",
        api_key=Secret("k"),
        max_tokens=16384,
        options={"header.X-Team": "ml", "header.Authorization": "Bearer override"},
    )
    adapter = adapter_for(provider)
    assert adapter.max_tokens == 16384
    assert adapter.http2 is True, "HTTPS upstreams default to HTTP/2"
    headers = adapter.headers({})
    assert headers["X-Team"] == "ml"
    assert headers["Authorization"] == "Bearer override"
    plain = adapter_for(ProviderConfig(name="l", kind="openai", endpoint="http://127.0.0.1:8000/v1"))
    assert plain.http2 is False, "plain-HTTP local servers speak HTTP/1.1"
    forced = adapter_for(ProviderConfig(name="f", kind="openai", endpoint="https://x/v1", http2=False))
    assert forced.http2 is False


def test_adapter_repr_hides_the_key() -> None:
    provider = ProviderConfig(name="p", kind="openrouter", endpoint="https://x/v1", api_key=Secret("sk-or-9"))
    adapter = adapter_for(provider)
    assert "sk-or-9" not in repr(adapter)


def test_unknown_kind_error_names_installed_kinds() -> None:
    with pytest.raises(UnknownProviderKind) as caught:
        adapter_for(ProviderConfig(name="x", kind="gemini", endpoint="https://x"))
    assert str(caught.value) == (
        "no provider kind 'gemini' is installed; installed kinds: "
        "databricks, azure-anthropic, azure-openai, openrouter, ollama, openai, anthropic"
    )


# --- plugins ----------------------------------------------------------------------------------------------------


def install_plugin(source: Path, target: Path) -> None:
    """Install a pure-Python distribution the way pip lays it out: the package plus a ``*.dist-info`` folder.

    The entry points are read from the plugin's own pyproject.toml, so the test proves what that file declares.
    (Equivalent to ``pip install --no-deps --target``, without needing a build backend or network.)
    """
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    for package in tomllib.loads((source / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]:
        shutil.copytree(source / package, target / package)
    dist_info = target / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def example_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    assert "example" not in installed_kinds(), "the example plugin must not be installed outside this test"
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(PLUGIN_SOURCE, site)
    monkeypatch.syspath_prepend(str(site))
    yield "example"
    sys.modules.pop("lynkr_example_provider", None)


def test_plugin_example_declares_its_entry_point() -> None:
    project = tomllib.loads((PLUGIN_SOURCE / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == {"example": "lynkr_example_provider:build_adapter"}


def test_installed_plugin_kind_is_found_and_builds_an_adapter(example_plugin: str) -> None:
    assert installed_kinds()[-1] == example_plugin
    adapter = adapter_for(
        ProviderConfig(
            name="mine", kind=example_plugin, endpoint="http://127.0.0.1:7000", api_key=Secret("pk"), max_tokens=999
        )
    )
    assert isinstance(adapter, HttpAdapter)
    assert (adapter.name, adapter.kind, adapter.wire, adapter.max_tokens) == ("mine", "example", "openai", 999)
    assert adapter.messages_url(stream=True) == "http://127.0.0.1:7000/generate"
    assert adapter.headers({})["x-example-plugin"] == "1"
    assert adapter.headers({})["authorization"] == "Bearer pk"


def test_config_accepts_plugin_kinds(example_plugin: str, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "lynkr.toml").write_text(
        f'[providers.custom]\nkind = "{example_plugin}"\nendpoint = "http://127.0.0.1:7000"\n'
    )
    config = load_config(environ={"HOME": str(tmp_path)}, cwd=workspace)
    assert config.model_provider == "custom"
    assert config.providers["custom"].kind == "example"
    assert adapter_for(config.providers["custom"]).messages_url(stream=False) == "http://127.0.0.1:7000/generate"


def test_unknown_kind_error_lists_plugin_kinds_too(example_plugin: str) -> None:
    with pytest.raises(UnknownProviderKind, match=r"installed kinds: databricks, .*, anthropic, example$"):
        adapter_for(ProviderConfig(name="x", kind="gemini", endpoint="https://x"))


@pytest.mark.parametrize("kind", ["openai", "openrouter", "azure-openai", "databricks"])
def test_the_tool_id_scheme_option_reaches_the_adapter(kind: str) -> None:
    options = {"deployment": "d", "tool_id_scheme": "short9"}
    provider = ProviderConfig(name="p", kind=kind, endpoint="https://h.invalid/v1", options=options)
    adapter = adapter_for(provider)
    assert isinstance(adapter, HttpAdapter)
    assert adapter.tool_id_scheme == "short9"
    without = ProviderConfig(name="p", kind=kind, endpoint="https://h.invalid/v1", options={"deployment": "d"})
    assert adapter_for(without).tool_id_scheme == "standard"  # type: ignore[attr-defined]


def test_an_unknown_tool_id_scheme_is_refused_naming_the_choices() -> None:
    provider = ProviderConfig(name="p", kind="openai", endpoint="https://h.invalid/v1",
                              options={"tool_id_scheme": "short8"})
    with pytest.raises(ValueError, match="short8.*standard, short9"):
        adapter_for(provider)
