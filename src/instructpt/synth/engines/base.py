"""The engine protocol: prompts in, completions out. A new backend is one file.

Prompts arrive already built and tokenized by `synth/format.py` with
`add_special_tokens=False`, so the literal `<s>` of the format is the only BOS.
Engines that can take token ids (hf, vllm, OpenAI-compatible servers that
accept token-id prompts) must send `Prompt.token_ids`, never re-tokenize the
text: a server-side tokenizer would add a second BOS and silently ruin pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from instructpt.errors import InstructptError


@dataclass(frozen=True, slots=True)
class Prompt:
    """A synthesizer prompt as text and as the token ids that are actually sent."""

    text: str
    token_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DecodingParams:
    """Decoding of the released synthesizer: greedy, at most 400 new tokens, context 4096."""

    max_new_tokens: int = 400
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }


#: finish reasons: "stop" (EOS or stop string), "length" (hit max_new_tokens),
#: "skipped" (the request can never succeed, e.g. context overflow; counted, not retried),
#: "error" (gave up after retries; the stage fails rather than lose the record).
FINISH_REASONS = ("stop", "length", "skipped", "error")


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    detail: str = ""  # why a request was skipped or failed


#: Called as soon as one completion is final, with its index in `prompts`; the
#: stage records it in the replay cache there, so a kill loses no finished request.
OnResult = Callable[[int, Completion], None]


@runtime_checkable
class Engine(Protocol):
    """What the synthesize stage needs from a backend."""

    name: str  # "hf" | "openai" | "vllm"
    model: str  # path or hub name, as given
    revision: str | None
    #: How many prompts the stage should hand over per `generate` call: large enough
    #: to keep the backend busy, small enough that a kill loses little.
    preferred_batch: int

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: DecodingParams,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order. Deterministic when greedy.

        Raises `EngineError` only when the backend is unusable (down for good,
        model missing); a single request that can never succeed comes back as a
        completion with finish_reason "skipped" instead.
        """
        ...

    def close(self) -> None:
        """Free processes, connections and memory."""
        ...


class EngineError(InstructptError):
    """The engine cannot serve at all (endpoint down after retries, model not loadable)."""
