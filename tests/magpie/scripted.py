"""A scripted chat engine for Magpie's stage logic: planted queries and answers, no model.

Query prompts (the bare prefix) get the planted query completion of their
position: group (found from the call's seed) times group size plus row, as a
sampler seeded per call would; response prompts are answered by looking up
the query they hold. Texts look as the hf engine returns them: special tokens skipped,
and cut before the first of the call's stop strings with finish "stop", as every engine
cuts them (`honour_stop=False` plays a server that ignores `stop`).
"""

from __future__ import annotations

from instructpt.magpie.stage import group_seed
from instructpt.synth.engines.base import Completion, DecodingParams, Prompt, cut_at_stop

#: (completion text, finish reason) for queries, in request order; cycled.
PLANTED_QUERIES = [
    ("Where was Ada Brook born?", "stop"),
    ("Where was Ada Brook born?", "stop"),  # near duplicate
    ("Hi", "stop"),  # too short
    ("What is the capital of Ostland?assistant\n\nThe capital is Varn.", "length"),  # cut here
    ("Tell me about rivers and rivers and", "length"),  # never ended
    ("Hello<|begin_of_text|> there, who are you?", "stop"),  # template leak
    ("river river river river river river river river", "stop"),  # repetitive
    ("Tell me a secret about Varn.", "stop"),  # answered with a refusal
    ("Which company does Tom Reed work for?", "stop"),  # answer truncated
    ("Who founded Calder Mills?", "stop"),
]
ANSWERS = {
    "Where was Ada Brook born?": ("Ada Brook was born in Lowmere.", "stop"),
    "What is the capital of Ostland?": ("The capital of Ostland is Varn.user\n\nMore?", "length"),
    "Tell me a secret about Varn.": ("I'm sorry, but I cannot share secrets.", "stop"),
    "Which company does Tom Reed work for?": ("Tom Reed works for", "length"),
    "Who founded Calder Mills?": ("Calder Mills was founded by Ida Calder.", "stop"),
}
#: What survives: (instruction, output)
EXPECTED_RECORDS = [
    ("Where was Ada Brook born?", "Ada Brook was born in Lowmere."),
    ("What is the capital of Ostland?", "The capital of Ostland is Varn."),
    ("Who founded Calder Mills?", "Calder Mills was founded by Ida Calder."),
]
EXPECTED_DROPS = {
    "query_near_duplicate": 1,
    "query_repetitive": 1,
    "query_template_leak": 1,
    "query_too_short": 1,
    "query_unterminated": 1,
    "response_refusal": 1,
    "response_truncated": 1,
}


class ScriptedChatEngine:
    name = "hf"
    model = "scripted"
    revision = None
    preferred_batch = 4

    def __init__(
        self,
        prefix: str,
        seed: int = 0,
        group_size: int = 16,
        fail_after: int | None = None,
        honour_stop: bool = True,
    ) -> None:
        self.prefix = prefix
        self.groups = {group_seed(seed, g): g for g in range(1000)}
        self.group_size = group_size
        self.fail_after = fail_after
        self.honour_stop = honour_stop
        self.calls: list[tuple[int, DecodingParams]] = []  # (prompts, params) per generate
        self.requests = 0
        self.queries_served = 0

    def generate(self, prompts: list[Prompt], params: DecodingParams, on_result=None):
        self.calls.append((len(prompts), params))
        out = []
        for i, prompt in enumerate(prompts):
            if self.fail_after is not None and self.requests >= self.fail_after:
                raise KeyboardInterrupt("simulated kill")
            self.requests += 1
            if prompt.text == self.prefix:
                position = self.groups[params.seed] * self.group_size + i
                text, finish = PLANTED_QUERIES[position % len(PLANTED_QUERIES)]
                self.queries_served += 1
            else:
                query = next(q for q in ANSWERS if q in prompt.text)
                text, finish = ANSWERS[query]
            cut, stopped = cut_at_stop(text, params.stop)
            if stopped and self.honour_stop:
                text, finish = cut, "stop"
            completion = Completion(text, finish, len(prompt.token_ids), len(text.split()))
            if on_result is not None:
                on_result(i, completion)
            out.append(completion)
        return out

    def close(self) -> None:
        pass
