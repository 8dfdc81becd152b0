"""The instruction synthesizer's text format: the one place it is written down.

The released synthesizer (instruction-pretrain/instruction-synthesizer) is a
completion model with a literal format, reproduced here exactly:

    example  = "<s> <CON> {text} </CON>\\n\\n" + "\\n\\n".join(pairs) + "</s>"
    pair     = "<QUE> {question} <ANS> {answer} </END>"
    prompt   = example_1 + ... + example_k + "<s> <CON> {text} </CON>\\n\\n"

- Note the space before `<CON>`. `<s>`/`</s>` are written as text and the
  prompt is tokenized with `add_special_tokens=False`, so each literal `<s>` is
  the only BOS of its example (a tokenizer-added BOS would double the first).
- Multiple choice: the question holds "\\nOptions:\\n- " and options separated
  by "\\n- "; the answer is one option verbatim.
- Chain of thought: the question ends with "\\nLet's think step by step." and
  the answer is "{reasoning}\\nTherefore, the answer is {final}".
- Decoding: greedy, at most 400 new tokens, context 4096.

Parsing follows the released `parse_pred`: split on `</END>`; a last piece
that did not end in `</END>` was cut off and is dropped; every piece needs
exactly one `<ANS>`, a question starting with `<QUE>` and a non-empty answer;
duplicate questions (case-insensitive) are dropped. Every drop is counted by
reason. We add one rule: a question or answer that still contains a format
tag after extraction ("stray_tag") is dropped too, since it would corrupt
the examples it is later shown in.

Tag injection. A raw text may itself contain `</CON>`, `<QUE>`, `</s>` ...
(web pages about this very format, HTML `<s>` strike-through). Left alone,
such a text would end its own context early or fake pairs. `escape_tags`
defuses every tag occurrence in the text by inserting a space after `<`
(`</CON>` -> `< /CON>`): still readable, no longer the tag string, and no
longer the tag token in any tokenizer that has tag tokens. Only the prompt
is changed; the `Synthesis` record keeps the original text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

FORMAT_VERSION = "instruction-synthesizer/1"

BOS, EOS = "<s>", "</s>"
CON_OPEN, CON_CLOSE = "<CON>", "</CON>"
QUE, ANS, END = "<QUE>", "<ANS>", "</END>"
PAIR_SEPARATOR = "\n\n"
OPTIONS_MARK = "\nOptions:\n- "
OPTION_SEPARATOR = "\n- "
COT_MARK = "\nLet's think step by step."
THEREFORE = "\nTherefore, the answer is "

TAGS = (BOS, EOS, CON_OPEN, CON_CLOSE, QUE, ANS, END)
_TAG_RE = re.compile(r"<(/?(?:s|CON|QUE|ANS|END))>")

#: Reasons a parsed piece is dropped, in the order they are checked.
DROP_REASONS = (
    "truncated",
    "no_ans",
    "multiple_ans",
    "no_que",
    "empty_question",
    "empty_answer",
    "stray_tag",
    "duplicate_question",
)


@dataclass(frozen=True, slots=True)
class Pair:
    question: str
    answer: str

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}


def escape_tags(text: str) -> str:
    """Defuse format tags inside a raw text (see the module docstring)."""
    return _TAG_RE.sub(r"< \1>", text)


def has_tag(text: str) -> bool:
    return _TAG_RE.search(text) is not None


def context_prompt(text: str) -> str:
    """`<s> <CON> {text} </CON>` and a blank line: what the synthesizer continues."""
    return f"{BOS} {CON_OPEN} {escape_tags(text)} {CON_CLOSE}{PAIR_SEPARATOR}"


def render_pairs(pairs: Sequence[Pair]) -> str:
    """The pairs of a finished example, closed by `</s>`."""
    body = PAIR_SEPARATOR.join(f"{QUE} {p.question} {ANS} {p.answer} {END}" for p in pairs)
    return body + EOS


def example(text: str, pairs: Sequence[Pair]) -> str:
    """A finished example, as shown before later texts of its slot."""
    return context_prompt(text) + render_pairs(pairs)


def build_prompt(examples: Sequence[tuple[str, Sequence[Pair]]], text: str) -> str:
    """Earlier examples of the slot, oldest first, then this text's open context."""
    return "".join(example(t, p) for t, p in examples) + context_prompt(text)


def multiple_choice_question(stem: str, options: Sequence[str]) -> str:
    return stem + OPTIONS_MARK + OPTION_SEPARATOR.join(options)


def split_multiple_choice(question: str) -> tuple[str, list[str]] | None:
    """(stem, options) of a multiple-choice question, or None when it is not one."""
    if OPTIONS_MARK not in question:
        return None
    stem, _, rest = question.partition(OPTIONS_MARK)
    return stem, rest.split(OPTION_SEPARATOR)


def chain_of_thought_answer(reasoning: str, final: str) -> str:
    return f"{reasoning}{THEREFORE}{final}"


def split_chain_of_thought(answer: str) -> tuple[str, str] | None:
    """(reasoning, final answer), or None when the answer has no final sentence."""
    if THEREFORE not in answer:
        return None
    reasoning, _, final = answer.rpartition(THEREFORE)
    final = final.strip()
    return (reasoning, final) if final else None


@dataclass
class ParseResult:
    pairs: list[Pair]
    pieces: int  # candidate pairs seen, dropped ones included
    dropped: Counter[str] = field(default_factory=Counter)


def parse_completion(completion: str) -> ParseResult:
    """Pairs of a synthesizer completion, with every dropped piece counted by reason."""
    text = completion.rstrip()
    if text.endswith(EOS):
        text = text[: -len(EOS)].rstrip()
    pieces = text.split(END)
    dropped: Counter[str] = Counter()
    if text.endswith(END):
        pieces.pop()  # the empty remainder after the last </END>
    else:
        last = pieces.pop()
        if last.strip():
            dropped["truncated"] += 1
    pairs: list[Pair] = []
    seen: set[str] = set()
    for piece in pieces:
        reason, pair = _parse_piece(piece, seen)
        if pair is None:
            dropped[reason] += 1
            continue
        seen.add(pair.question.lower())
        pairs.append(pair)
    counted = len(pieces) + dropped["truncated"]
    return ParseResult(pairs=pairs, pieces=counted, dropped=dropped)


def _parse_piece(piece: str, seen: set[str]) -> tuple[str, Pair | None]:
    parts = piece.split(ANS)
    if len(parts) == 1:
        return "no_ans", None
    if len(parts) > 2:
        return "multiple_ans", None
    question, answer = parts[0].strip(), parts[1].strip()
    if not question.startswith(QUE):
        return "no_que", None
    question = question.replace(QUE, "").strip()
    if not question:
        return "empty_question", None
    if not answer:
        return "empty_answer", None
    if has_tag(question) or has_tag(answer):
        return "stray_tag", None
    if question.lower() in seen:
        return "duplicate_question", None
    return "", Pair(question, answer)
