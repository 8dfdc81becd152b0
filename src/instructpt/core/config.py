"""Typed stage configs: YAML in, validated before any work, resolved YAML out.

Each stage owns one config model and receives only that (never the whole run
config), so a stage can run alone from the CLI with the same semantics as
inside `instructpt run`. Unknown or ill-typed keys fail at load time with a
message naming the key and the file, and a did-you-mean where one is close.
CLI flags override file values; a flag that was not given is `None` and never
overrides, so `--no-flag` beats a file's `true` (unlike truthiness merges).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from instructpt.core.atomic import atomic_write_text
from instructpt.errors import ConfigError

C = TypeVar("C", bound=BaseModel)

#: A name that becomes one folder (run, variant, model): no '/', no leading '.', so no '..'.
PLAIN_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"


class StageConfig(BaseModel):
    """Base of every stage config: strict keys, frozen, validated defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    #: Field names that do not change a stage's output (parallelism, UI); they
    #: are left out of the config hash so changing them never blocks a resume.
    runtime_fields: ClassVar[frozenset[str]] = frozenset()

    def config_hash(self) -> str:
        """Hash of the output-relevant fields; guards resume against config drift."""
        data = self.model_dump(mode="json", exclude=set(self.runtime_fields))
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_errors(model: type[BaseModel], err: ValidationError, where: str) -> str:
    known = list(model.model_fields)
    lines = [f"invalid config in {where}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = f"unknown key{_did_you_mean(str(e['loc'][-1]), known)}"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys, got {type(data).__name__}"
        )
    return data


def merge_values(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win key by key; nested sections merge instead of replacing each other."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(
    model: type[C],
    values: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    where: str = "command-line flags",
) -> C:
    """Validate `values` (from a file) updated by non-None `overrides` (from flags)."""
    merged = merge_values(values or {}, overrides or {})
    try:
        return model.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format_errors(model, err, where)) from None


def load_config(model: type[C], path: Path | None, overrides: dict[str, Any] | None = None) -> C:
    """Load a stage config from an optional YAML file plus CLI overrides."""
    values = read_yaml_mapping(path) if path is not None else {}
    where = f"{path} (or its command-line overrides)" if path is not None else "command-line flags"
    return build_config(model, values, overrides, where)


def dump_config(config: BaseModel, path: Path) -> None:
    """Write the resolved config as YAML next to the outputs (atomically)."""
    data = config.model_dump(mode="json")
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# --------------------------------------------------------------------------- synthesis
