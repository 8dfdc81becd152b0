"""The cached request loop shared by `synthesize` and `magpie`.

One `CachedRequests` per process holds the engine (built on the first request
that is not in the cache, so a fully replayed resume never loads a model), the
replay cache (`synth/cache.py`) and the count of requests sent. A caller
plans its own calls: which prompts go together and with which params
(synthesize: length-sorted chunks; magpie: seeded query groups, then
responses), keyed by an `identity` that names everything that determines a
completion. `send` makes one `generate` call and records each finished
completion in the cache the moment the engine hands it over, so a kill loses
no finished request.

The batch size is the engine's own `preferred_batch`, read from the config
(the engine's options model, see `synth/engines/options.py`), never from a
loaded engine: a resumed run forms the same batches, and so the same bytes,
before the engine is even built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from instructpt.synth.cache import ReplayCache
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import Completion, DecodingParams, Engine, Prompt
from instructpt.synth.engines.registry import preferred_batch


class CachedRequests:
    """The engine (built lazily), the replay cache and the request count of one run."""

    def __init__(
        self,
        cfg: SynthesizeConfig,
        engine_factory: Callable[[SynthesizeConfig], Engine],
        cache_path: Path | None,
    ) -> None:
        self.cfg = cfg
        self.engine_factory = engine_factory
        self.engine: Engine | None = None
        self.cache = ReplayCache(cache_path) if cache_path is not None else None
        self.sent = 0
        #: Prompts per `generate` call (see the module docstring).
        self.batch_size = preferred_batch(cfg)

    def identity(self, params: DecodingParams, **extra: Any) -> dict[str, Any]:
        """What a replay key is made of besides the prompt: engine, model, decoding, and
        the caller's own fields (`format_version`, magpie's request kind)."""
        return {
            "name": self.cfg.engine,
            "model": self.cfg.model,
            "revision": self.cfg.revision,
            "decoding": params.as_dict(),
            **extra,
        }

    def cached(self, keys: Sequence[str]) -> list[Completion | None]:
        """The cached completion of each key, None where there is none (or no cache)."""
        if self.cache is None:
            return [None] * len(keys)
        return [self.cache.get(k) for k in keys]

    @property
    def cache_hits(self) -> int:
        return self.cache.hits if self.cache is not None else 0

    def send(
        self,
        prompts: Sequence[Prompt],
        keys: Sequence[str],
        params: DecodingParams,
        on_result: Callable[[int, Completion], None],
    ) -> None:
        """One `generate` call; each final completion is cached under `keys[j]` (an error
        never is: it is retried on resume) and then handed to `on_result(j, completion)`."""
        engine = self.get_engine()

        def done(j: int, completion: Completion) -> None:
            if self.cache is not None and completion.finish_reason != "error":
                self.cache.put(keys[j], completion)
            on_result(j, completion)

        self.sent += len(prompts)
        engine.generate(prompts, params, done)

    def get_engine(self) -> Engine:
        if self.engine is None:
            self.engine = self.engine_factory(self.cfg)
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self.cache is not None:
            self.cache.close()
