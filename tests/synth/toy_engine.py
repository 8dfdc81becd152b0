"""A toy engine in one file, as the recipe in `synth/engines/registry.py` asks.

The engine class with `from_config`, and its options model with
`preferred_batch`; registering it is one `register_engine(...)` call (or one
row of `ENGINES`). It answers every prompt with one pair about the last text
of the prompt, so a test can predict each record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import Completion, DecodingParams, OnResult, Prompt
from instructpt.synth.engines.options import EngineOptions


class ToyOptions(EngineOptions):
    """`engine_options:` of the toy engine."""

    batch: int = Field(3, ge=1, description="Prompts per generate call.")
    prefix: str = Field("Toy", description="Start of every question.")

    def preferred_batch(self) -> int:
        return self.batch


class ToyEngine:
    name = "toy"
    #: Sizes of every generate call, over all instances (the stage builds its own).
    calls: ClassVar[list[int]] = []

    @classmethod
    def from_config(cls, cfg: SynthesizeConfig, options: ToyOptions) -> ToyEngine:
        return cls(cfg.model or "", options)

    def __init__(self, model: str, options: ToyOptions) -> None:
        self.model = model
        self.revision = None
        self.options = options
        self.preferred_batch = options.preferred_batch()

    def generate(
        self, prompts: Sequence[Prompt], params: DecodingParams, on_result: OnResult | None = None
    ) -> list[Completion]:
        self.calls.append(len(prompts))
        out = []
        for i, prompt in enumerate(prompts):
            text = prompt.text.rsplit("<CON> ", 1)[1].rsplit(" </CON>", 1)[0]
            body = f"<QUE> {self.options.prefix}: first word? <ANS> {text.split()[0]} </END>"
            completion = Completion(body, "stop", len(prompt.token_ids), len(body.split()))
            if on_result is not None:
                on_result(i, completion)
            out.append(completion)
        return out

    def close(self) -> None:
        pass
