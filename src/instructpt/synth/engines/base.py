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
    """A synthesizer prompt as text and as the token ids that are actually sent.

    `seed` gives this one request its own sampling seed in place of the call's
    `DecodingParams.seed`. It lives on the prompt, not in the `generate`
    signature, so wrappers that pass prompts through (plan's timing engine,
    scripted test engines) need no change. The openai and vllm engines seed
    each request anyway and honour it; the hf engine samples a whole batch from
    one torch generator seeded with `DecodingParams.seed` and ignores it, so a
    caller that wants distinct samples of one prompt on hf varies the batch,
    not the seed (see `magpie/stage.py`).
    """

    text: str
    token_ids: tuple[int, ...]
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class DecodingParams:
    """Decoding of the released synthesizer: greedy, at most 400 new tokens, context 4096.

    `stop`: strings that end a completion early. Every engine returns the text
    cut before the first of them, without it, with finish_reason "stop", so a
    caller sees the same text whichever backend generated it (servers differ:
    OpenAI and vLLM drop the stop string, `transformers serve` keeps it).
    """

    max_new_tokens: int = 400
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A list would make the frozen params unhashable; an empty string would end
        # every completion before its first character (vLLM rejects it outright).
        object.__setattr__(self, "stop", tuple(self.stop))
        if any(not s for s in self.stop):
            raise ValueError(f"stop strings must not be empty, got {list(self.stop)!r}")

    def as_dict(self) -> dict[str, Any]:
        """The replay cache's view of the params: "stop" only when there are stops, so
        every key made before stop strings existed stays valid."""
        out: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
        }
        if self.stop:
            out["stop"] = list(self.stop)
        return out

    def seed_for(self, prompt: Prompt) -> int:
        """The sampling seed of one request: its own when it has one, else the call's."""
        return self.seed if prompt.seed is None else prompt.seed


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the earliest stop string, and whether one was found.

    The engines' common normalization: the stop string itself is never part of a
    completion, whichever engine or server produced it.
    """
    end = len(text)
    found = False
    for stop in stops:
        at = text.find(stop)
        if at != -1 and at < end:
            end, found = at, True
    return text[:end], found


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

        A prompt's own `seed` replaces `params.seed` for that request where the
        backend seeds requests one by one (openai, vllm; see `Prompt`). Text is
        cut before the first of `params.stop`, with finish_reason "stop".

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


def require_completions(
    results: Sequence[Completion | None], describe: Callable[[int], str]
) -> list[Completion]:
    """Every result, or `EngineError` naming (via `describe(i)`) the first that failed.

    A stage never writes a record without its completion: a request that came back
    as an error (or never came back) stops the stage, to be resumed, not skipped.
    """
    final: list[Completion] = []
    for i, res in enumerate(results):
        if res is None or res.finish_reason == "error":
            detail = res.detail if res else "no completion returned"
            raise EngineError(f"{describe(i)} failed: {detail}")
        final.append(res)
    return final
