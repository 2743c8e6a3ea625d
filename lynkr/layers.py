"""The sources a configuration is read from, and what each value's source was.

:class:`Layers` holds the TOML file's contents and the variables (``.env`` overlaid by the environment), and
turns raw values into typed ones with error messages that name where the bad value came from.  It also
collects a :class:`Source` for every value it hands out, which ``lynkr config --sources`` prints.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from lynkr.settings import ConfigError, Context, Converter, Invalid

TOML_FILE_NAME: Final = "lynkr.toml"
ENV_FILE_NAME: Final = ".env"


@attrs.frozen(kw_only=True)
class Source:
    """Where one value came from: a key of the TOML file, or a variable from ``.env`` or the environment."""

    layer: Literal["toml", "dotenv", "environment"]
    key: str  # the TOML key (dotted) or the variable's name

    def describe(self, *, config_path: Path | None) -> str:
        if self.layer == "toml":
            return f"{config_path.name if config_path else TOML_FILE_NAME} ({self.key})"
        return f"{ENV_FILE_NAME if self.layer == 'dotenv' else 'environment'} ({self.key})"


def read_toml(path: Path, *, explicit: bool) -> dict[str, Any]:
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
class Layers:
    toml: Mapping[str, Any]
    toml_path: Path | None
    env: Mapping[str, str]  # the .env values overlaid by the real environment
    from_dotenv: frozenset[str]
    env_file: Path | None
    cwd: Path
    home: Path
    sources: dict[str, Source] = attrs.field(factory=dict)  # filled as values are taken from TOML or variables

    def env_value(self, var: str, *, keep_empty: bool = False) -> str | None:
        raw = self.env.get(var)
        if raw is None or (not raw.strip() and not keep_empty):
            return None
        return raw

    def env_label(self, var: str) -> str:
        origin = f" (from {self.env_file})" if var in self.from_dotenv else ""
        return f"{var}={self.env.get(var, '')!r}{origin}"

    def env_source(self, var: str) -> Source:
        return Source(layer="dotenv" if var in self.from_dotenv else "environment", key=var)

    def toml_label(self, dotted: str, raw: object) -> str:
        return f"{dotted} = {raw!r} in {self.toml_path}"

    def convert_env(self, converter: Converter, var: str) -> Any:
        raw = self.env.get(var, "")
        try:
            return converter.convert(raw, Context(base=self.cwd, home=self.home, from_text=True))
        except Invalid:
            raise ConfigError(
                f"{self.env_label(var)} is not {converter.what}; set {var} to {converter.example}"
            ) from None

    def convert_toml(self, converter: Converter, dotted: str, raw: object) -> Any:
        base = self.toml_path.parent if self.toml_path else self.cwd
        try:
            return converter.convert(raw, Context(base=base, home=self.home, from_text=False))
        except Invalid:
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
