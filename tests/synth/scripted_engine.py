"""A scripted stand-in engine for testing the stage's scheduling logic.

It is not a model: it answers each prompt with pairs derived from the last
text in the prompt, so tests can predict every pair, link and drop. The real
engines (hf, openai against real servers, vllm) are tested in their own files.
"""

from __future__ import annotations

from collections import Counter

from instructpt.synth.engines.base import Completion, DecodingParams, Prompt


def last_context(prompt: str) -> str:
    return prompt.rsplit("<CON> ", 1)[1].rsplit(" </CON>", 1)[0]


class ScriptedEngine:
    """Texts starting with "Barren" yield nothing; others yield two pairs (one truncated extra)."""

    name = "hf"
    model = "scripted"
    revision = None
    preferred_batch = 4

    def __init__(self, fail_after: int | None = None) -> None:
        self.prompts: list[str] = []
        self.seen: Counter[tuple[int, ...]] = Counter()
        self.fail_after = fail_after

    def generate(self, prompts, params: DecodingParams, on_result=None):
        out = []
        for i, prompt in enumerate(prompts):
            if self.fail_after is not None and len(self.prompts) >= self.fail_after:
                raise KeyboardInterrupt("simulated crash")
            self.prompts.append(prompt.text)
            self.seen[prompt.token_ids] += 1
            completion = self.answer(prompt)
            if on_result is not None:
                on_result(i, completion)
            out.append(completion)
        return out

    @staticmethod
    def answer(prompt: Prompt) -> Completion:
        text = last_context(prompt.text)
        first = text.split()[0]
        if first.startswith("Barren"):
            body = "nothing useful here"
        else:
            body = (
                f"<QUE> What is the first word? <ANS> {first} </END>\n\n"
                f"<QUE> How many characters? <ANS> {len(text)} </END>\n\n<QUE> cut"
            )
        return Completion(body, "stop", len(prompt.token_ids), len(body.split()))

    def close(self) -> None:
        pass
