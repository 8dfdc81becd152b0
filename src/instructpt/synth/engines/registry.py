"""The engine registry: engine name -> the file its class lives in, its options, its extra.

Adding an engine (the whole recipe; nothing else names an engine):
1. One new file, e.g. `synth/engines/sglang.py`, with the engine class (the
   `Engine` protocol of `base.py`: `generate`, `close`, `name`, `model`,
   `revision`, `preferred_batch`) and a classmethod
   `from_config(cfg: SynthesizeConfig, options) -> Engine`; heavy dependencies
   (torch, vllm, an SDK) are imported inside it, never at module level. Its
   options model (an `EngineOptions` subclass) sits in the same file and says
   `preferred_batch()` (required: no engine silently gets another's batch),
   and where it differs from the defaults `replica_gpus`, `plan_device`,
   `endpoints`, `serves_remotely`.
2. One row in `ENGINES` below (or `register_engine(...)` from a plugin or a
   test: that registers it in the calling process only, not in Ray workers).
Its options then come from `engine_options:` of `synthesize`/`magpie`; the
built-in engines keep their own sections (`hf:`, `openai:`, `vllm:`), whose
names and defaults are part of the config hashes.

Engine classes are imported by module path only when used, so listing an
engine here costs nothing when it is not chosen, and a missing optional
dependency fails with the pip extra that installs it.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from instructpt.errors import ConfigError
from instructpt.synth.engines.base import Engine, EngineError
from instructpt.synth.engines.options import (
    EngineOptions,
    HFEngineConfig,
    OpenAIEngineConfig,
    VLLMEngineConfig,
)


class EngineConfig(Protocol):
    """What the registry reads of a stage config (`SynthesizeConfig`, `MagpieConfig`)."""

    engine: str
    engine_options: dict[str, Any]


@dataclass(frozen=True)
class EngineSpec:
    """One registry row.

    `module`/`cls`: where the engine class is (imported on first use).
    `options`: its options model. `section`: the config field holding the
    options (the built-in engines); None reads them from `engine_options`.
    `pip_extra`: the `instructpt[...]` extra to install when importing the
    module fails. `seeds_per_request`: whether `generate` honours each
    `Prompt.seed` (False: one seed per call, as hf; magpie then samples its
    queries in seeded groups).
    """

    module: str
    cls: str
    options: type[EngineOptions]
    section: str | None = None
    pip_extra: str | None = None
    seeds_per_request: bool = True

    def load(self) -> Any:
        """The engine class; a failed import names the package or extra to install."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            hint = (
                f"pip install 'instructpt[{self.pip_extra}]'"
                if self.pip_extra
                else f"install the package '{exc.name}'"
            )
            raise EngineError(f"cannot import {self.module} ({exc}); {hint}") from exc
        return getattr(module, self.cls)


ENGINES: dict[str, EngineSpec] = {
    "hf": EngineSpec(
        "instructpt.synth.engines.hf",
        "HFEngine",
        HFEngineConfig,
        section="hf",
        seeds_per_request=False,
    ),
    "openai": EngineSpec(
        "instructpt.synth.engines.openai", "OpenAIEngine", OpenAIEngineConfig, section="openai"
    ),
    "vllm": EngineSpec(
        "instructpt.synth.engines.vllm",
        "VLLMEngine",
        VLLMEngineConfig,
        section="vllm",
        pip_extra="vllm",
    ),
}


def register_engine(name: str, spec: EngineSpec) -> None:
    """Add an engine under `name` in this process (a row of `ENGINES` does it for all)."""
    if name in ENGINES or name == "miner":
        raise ConfigError(f"engine '{name}' is already registered")
    ENGINES[name] = spec


def engine_spec(name: str, extra: tuple[str, ...] = ()) -> EngineSpec:
    """The row of `name`; an unknown name fails with a did-you-mean over every choice."""
    spec = ENGINES.get(name)
    if spec is None:
        choices = [*ENGINES, *extra]
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"engine '{name}' is unknown{hint}; choose one of {', '.join(choices)}")
    return spec


def engine_options(cfg: EngineConfig) -> EngineOptions:
    """The options of `cfg.engine`: its own section, or `engine_options` validated by its model."""
    spec = engine_spec(cfg.engine)
    if spec.section is not None:
        if cfg.engine_options:
            raise ConfigError(
                f"engine {cfg.engine} takes its options under `{spec.section}:`, "
                "not `engine_options:`"
            )
        options = getattr(cfg, spec.section)
    else:
        options = spec.options.model_validate(cfg.engine_options)
    if not isinstance(options, spec.options):
        raise ConfigError(f"engine {cfg.engine}: options are not a {spec.options.__name__}")
    return options


def check_engine_name(name: str, extra: tuple[str, ...] = ()) -> str:
    """`name` when it is registered (or one of `extra`: synthesize's miner); else the
    did-you-mean as a `ValueError`, which a config's field validator reports with the key."""
    if name not in extra:
        try:
            engine_spec(name, extra)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return name


def check_engine_options(cfg: EngineConfig, extra: tuple[str, ...] = ()) -> None:
    """Fail at config time on options the engine does not take (as a `ValueError`)."""
    try:
        if cfg.engine in extra:
            if cfg.engine_options:
                raise ConfigError(f"engine {cfg.engine} takes no engine_options")
            return
        engine_options(cfg)
    except (ConfigError, ValidationError) as exc:
        raise ValueError(str(exc)) from None


def preferred_batch(cfg: EngineConfig) -> int:
    """Prompts per `generate` call, from the config (the engine's options model says), so
    a resumed run forms the same batches before the engine is even loaded."""
    return engine_options(cfg).preferred_batch()


def seeds_per_request(cfg: EngineConfig) -> bool:
    return engine_spec(cfg.engine).seeds_per_request


def build_engine(cfg: Any) -> Engine:
    """The configured backend (`SynthesizeConfig`); only the chosen engine is imported."""
    return engine_spec(cfg.engine).load().from_config(cfg, engine_options(cfg))
