"""Per-pair form and grounding checks: `check_pair(...) -> (keep, reason)`.

The synthesizer (or a miner) can write pairs that look fine to the parser
but teach the wrong thing: a multiple-choice answer that is none of its
options, a chain of thought with no final answer, or an answer about facts
the text never states. The paper's synthesizer is trained to answer from the
text (Cheng et al. 2024, sec. 2.1), so an open answer that shares few words
with its text is most likely a hallucination, and pre-training on it would
teach the model to make facts up. Checks, in order (first failure wins):

1. `too_short` / `too_long`: question and answer length in characters.
2. `question_is_answer`: the same words on both sides teach nothing.
3. Multiple choice (the question holds the options block, format.OPTIONS_MARK):
   `mc_too_few_options` (< 2), `mc_empty_option`, `mc_duplicate_options`
   (case-insensitive), `mc_answer_not_option` (the answer, or the final answer
   of a chain of thought, must be one option exactly, spaces aside).
4. Chain of thought (the question ends with format.COT_MARK): the answer must
   split into reasoning and a non-empty final (`cot_malformed`).
5. `ungrounded` (open answers only; options and computed finals are exempt):
   - extractive (at most `extractive_max_words` words): at least
     `min_answer_overlap` of the answer's content words occur in the text,
     and every number of the answer occurs in the text verbatim (a changed
     digit keeps the word overlap high and the fact wrong);
   - generative (longer, or a chain of thought's whole answer): at least
     `min_generative_overlap` of its content words occur in the text.
   Answers made only of yes/no/true/false words are judged by their question
   and pass. Content words are words that are not stop words; an answer of
   stop words only is judged on all its words.
"""

from __future__ import annotations

import re

from instructpt.filter.config import FilterConfig
from instructpt.filter.normalize import words
from instructpt.synth.format import COT_MARK, split_chain_of_thought, split_multiple_choice

#: Reasons a pair is dropped here, in the order they are checked.
REASONS = (
    "too_short",
    "too_long",
    "question_is_answer",
    "mc_too_few_options",
    "mc_empty_option",
    "mc_duplicate_options",
    "mc_answer_not_option",
    "cot_malformed",
    "ungrounded",
)

_COT_CUE = COT_MARK.strip()
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_BOOLEAN = frozenset({"yes", "no", "true", "false"})
_STOP_WORDS_TEXT = """
    a an the and or but nor of to in on at by for with from as into onto over under
    about after before between through during than then so such that this these those
    it its is are was were be been being am do does did has have had having will
    would shall should can could may might must not no yes i you he she we they me him
    her us them my your his our their who whom whose which what when where why how
    there here all any both each few more most other some only own same too very s t
    just also if because while until again further once"""
#: Words that carry no fact; `\w+` tokens, so "it's" is "it" and "s".
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


class TextGrounding:
    """One text, tokenized once, against which all of its pairs are checked."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = frozenset(words(text))

    def overlap(self, answer_words: list[str]) -> float:
        """Share of the answer's content words (all words if none) found in the text."""
        content = [w for w in answer_words if w not in STOP_WORDS] or answer_words
        if not content:
            return 0.0
        return sum(w in self.words for w in content) / len(content)

    def numbers_verbatim(self, answer: str) -> bool:
        return all(n in self.text for n in _NUMBER_RE.findall(answer))


def _open_grounded(answer: str, ground: TextGrounding, cfg: FilterConfig, generative: bool) -> bool:
    answer_words = words(answer)
    if answer_words and all(w in _BOOLEAN for w in answer_words):
        return True
    if generative or len(answer_words) > cfg.extractive_max_words:
        return ground.overlap(answer_words) >= cfg.min_generative_overlap
    return ground.overlap(answer_words) >= cfg.min_answer_overlap and ground.numbers_verbatim(
        answer
    )


def check_pair(
    question: str, answer: str, ground: TextGrounding, cfg: FilterConfig
) -> tuple[bool, str]:
    """(True, "") for a pair to keep, else (False, reason); see the module docstring."""
    question, answer = question.strip(), answer.strip()
    if len(question) < cfg.min_question_chars or len(answer) < cfg.min_answer_chars:
        return False, "too_short"
    if len(question) > cfg.max_question_chars or len(answer) > cfg.max_answer_chars:
        return False, "too_long"
    if words(question) == words(answer):
        return False, "question_is_answer"

    cued = question.endswith(_COT_CUE)
    body = question[: -len(_COT_CUE)].rstrip() if cued else question
    final = answer
    if cued:
        cot = split_chain_of_thought(answer)
        if cot is None or not cot[0].strip():
            return False, "cot_malformed"
        final = cot[1].strip()

    mc = split_multiple_choice(body)
    if mc is not None:
        options = [o.strip() for o in mc[1]]
        if len(options) < 2:
            return False, "mc_too_few_options"
        if not all(options):
            return False, "mc_empty_option"
        if len({o.casefold() for o in options}) != len(options):
            return False, "mc_duplicate_options"
        if final not in options:
            return False, "mc_answer_not_option"
        return True, ""

    if not _open_grounded(answer, ground, cfg, generative=cued):
        return False, "ungrounded"
    return True, ""
