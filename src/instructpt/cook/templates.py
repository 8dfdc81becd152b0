"""Every cooking template, in one place, with a stable id and a set version.

Two kinds of template turn a text and its pairs into pre-training text:

*Pair templates* render one pair as (question part, answer part). Each
belongs to a family and claims exactly the pair kinds it can render:

    family    kind(s)                        id prefix
    qa        open                           qa.
    mc        mc                             mc.
    cot       cot                            cot.
    mc_cot    mc_cot                         mccot.
    verbatim  open, mc, cot, mc_cot          raw.

    ("verbatim" keeps the synthesizer's own wording: "Options:\\n- ..." and
    "Let's think step by step.", as in the paper's released examples.)

*Layout templates* place the text and the rendered pairs. Families:
`reading` (text, then questions), `dialog` (role turns after the text),
`numbered` (numbered questions after the text), `pairs_first` (pairs, then
the text). `chain` templates join the segments of an M-shot chain.

Fields a template may use (anything else fails at import):
    open     q: question, question_lc           a: answer, answer_p
    cot      q: question, question_lc           a: reasoning, reasoning_lc, final, final_p
    mc       q: stem, stem_lc, options          a: label, option, option_p
    mc_cot   q: stem, stem_lc, options          a: reasoning, reasoning_lc, label, option,
                                                   option_p
    verbatim q: question                        a: answer
    layout   text, pairs; per pair: q, a, n
`*_lc` lowercases the first letter (only offered when the question starts
with a common question word, so names keep their capital); `*_p` ends the
value with a full stop unless it already ends in punctuation. A template
that starts with a role label ("Answer: {answer}") is used only in layouts
whose answers are unlabeled, so "A: Answer: x" never occurs.

Multiple-choice option styles (`OPTION_STYLES`) say how options are listed
and what `{label}` is. Options are shuffled; a template with
`none_of_the_above` appends "None of the above" as the last option and, with
probability `none_of_the_above_rate`, removes the correct option so that
"None of the above" becomes the answer. That swap is valid only when the
question had one correct option among at least three, so it is made only
then, and never when an option already refers to the others ("all of the
above", "both A and B", ...), where shuffling or removing would change its
meaning (such pairs also keep their option order).

Change any template, add or remove one, and bump `TEMPLATE_SET_VERSION`:
it seeds every choice and is written into every cooked record, so a cooked
corpus always says which set made it. Ids are never reused.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from instructpt.synth.format import TAGS

TEMPLATE_SET_VERSION = "instructpt-templates/1"

PAIR_KINDS = ("open", "mc", "cot", "mc_cot")
PAIR_FAMILIES = ("qa", "mc", "cot", "mc_cot", "verbatim")
LAYOUT_FAMILIES = ("reading", "dialog", "numbered", "pairs_first")

#: family -> the pair kinds it renders
FAMILY_KINDS: dict[str, tuple[str, ...]] = {
    "qa": ("open",),
    "mc": ("mc",),
    "cot": ("cot",),
    "mc_cot": ("mc_cot",),
    "verbatim": PAIR_KINDS,
}

NONE_OF_THE_ABOVE = "None of the above"

# A role label at the start of a template ("Answer: {answer}"); such a template
# is kept out of layouts that label turns themselves, so "A: Answer: x" never occurs.
_LABEL = re.compile(r"^(Question|Answer|Response|Short answer|Reply|Q|A): ")


@dataclass(frozen=True, slots=True)
class OptionStyle:
    """How a list of options is written: `line` per option, joined by `joiner`."""

    line: str  # fields: label, option
    joiner: str
    labels: str  # label alphabet; "" for label-free styles (bullets)
    numeric: bool = False


OPTION_STYLES: dict[str, OptionStyle] = {
    "letter_dot": OptionStyle("{label}. {option}", "\n", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "letter_rparen": OptionStyle("{label}) {option}", "\n", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "letter_colon": OptionStyle("{label}: {option}", "\n", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "paren_lower": OptionStyle("({label}) {option}", "\n", "abcdefghijklmnopqrstuvwxyz"),
    "bracket_upper": OptionStyle("[{label}] {option}", "\n", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "number_rparen": OptionStyle("{label}) {option}", "\n", "", numeric=True),
    "number_dot": OptionStyle("{label}. {option}", "\n", "", numeric=True),
    "bullet": OptionStyle("- {option}", "\n", ""),
    "star": OptionStyle("* {option}", "\n", ""),
    "inline_upper": OptionStyle("({label}) {option}", " ", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "inline_lower": OptionStyle("({label}) {option}", " ", "abcdefghijklmnopqrstuvwxyz"),
}

MAX_OPTIONS = 26


def has_labels(style: OptionStyle) -> bool:
    return style.numeric or bool(style.labels)


@dataclass(frozen=True, slots=True)
class PairTemplate:
    id: str
    family: str
    question: str
    answer: str
    options: str | None = None  # an OPTION_STYLES key, for mc and mc_cot
    none_of_the_above: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return FAMILY_KINDS[self.family]

    @property
    def labeled(self) -> bool:
        """Writes its own "Question:"/"Answer:"-style label: only for layouts without labels."""
        return bool(_LABEL.match(self.question) or _LABEL.match(self.answer))


@dataclass(frozen=True, slots=True)
class Layout:
    id: str
    family: str
    frame: str  # fields: text, pairs
    pair: str  # fields: q, a, n
    separator: str  # between rendered pairs

    @property
    def labeled(self) -> bool:
        """Labels its answers ("A: {a}"), so pair templates must not add their own."""
        return "{a}" not in self.pair.split("\n")


@dataclass(frozen=True, slots=True)
class ChainJoin:
    id: str
    joiner: str  # between the segments of a chain


# --------------------------------------------------------------------------- open QA

_QA = [
    ("qa.001", "{question}", "{answer}"),
    ("qa.002", "{question}", "{answer_p}"),
    ("qa.003", "{question}", "The answer is: {answer}"),
    ("qa.004", "{question}", "Answer: {answer}"),
    ("qa.005", "Based on the text, {question_lc}", "{answer}"),
    ("qa.006", "According to the passage, {question_lc}", "{answer_p}"),
    ("qa.007", "{question} Answer using the text.", "{answer}"),
    ("qa.008", "{question} Keep the answer short.", "{answer}"),
    ("qa.009", "Answer the following question. {question}", "{answer}"),
    ("qa.010", "Answer this question about the text: {question}", "{answer_p}"),
    ("qa.011", "Here is a question: {question}", "Here is the answer: {answer}"),
    ("qa.012", "{question}", "Sure. {answer_p}"),
    ("qa.013", "From the text above, {question_lc}", "{answer}"),
    ("qa.014", "Using only the passage, answer: {question}", "{answer}"),
    ("qa.015", "Please answer: {question}", "{answer_p}"),
    ("qa.016", "{question} Give a brief answer.", "{answer}"),
    ("qa.017", "Reading the text, {question_lc}", "{answer}"),
    ("qa.018", "Question about the passage: {question}", "{answer}"),
    ("qa.019", "{question} (Refer to the text.)", "{answer_p}"),
    ("qa.020", "In the text, {question_lc}", "{answer}"),
    ("qa.021", "Can you tell me this? {question}", "{answer_p}"),
    ("qa.022", "I have a question about the article. {question}", "{answer_p}"),
    ("qa.023", "Respond to the question. {question}", "{answer}"),
    ("qa.024", "{question}", "Response: {answer}"),
    ("qa.025", "{question}", "Short answer: {answer}"),
    ("qa.026", "Given the passage, {question_lc}", "{answer}"),
    ("qa.027", "Quick question: {question}", "{answer}"),
    ("qa.028", "{question} Answer in a few words.", "{answer}"),
    ("qa.029", "Consider the text. {question}", "{answer_p}"),
    ("qa.030", "What does the passage say? {question}", "{answer_p}"),
    ("qa.031", "Tell me, {question_lc}", "{answer}"),
    ("qa.032", "{question} Answer from the reading.", "{answer}"),
    ("qa.033", "Test your reading: {question}", "{answer}"),
    ("qa.034", "{question}", "It is this: {answer}"),
    ("qa.035", "With reference to the text, {question_lc}", "{answer}"),
    ("qa.036", "Question: {question}", "{answer}"),
]

# --------------------------------------------------------------------------- multiple choice

# (id, option style, question, answer, none-of-the-above)
_MC = [
    ("mc.001", "letter_dot", "{stem}\n{options}", "{label}", False),
    ("mc.002", "letter_dot", "{stem}\n{options}", "{label}. {option}", False),
    ("mc.003", "letter_dot", "{stem}\nChoose one:\n{options}", "The answer is {label}.", False),
    ("mc.004", "letter_dot", "{stem}\nOptions:\n{options}", "{option_p}", False),
    ("mc.005", "letter_dot", "{stem}\n{options}\nAnswer with a letter.", "{label}", False),
    ("mc.006", "letter_dot", "{stem}\n{options}", "{label}. {option}", True),
    ("mc.007", "letter_rparen", "{stem}\n{options}", "{label}) {option}", False),
    ("mc.008", "letter_rparen", "{stem}\nPick the right option.\n{options}", "{label}", False),
    ("mc.009", "letter_rparen", "{stem}\n{options}", "The correct option is {label}.", True),
    ("mc.010", "letter_colon", "{stem}\n{options}", "{label}: {option}", False),
    ("mc.011", "letter_colon", "Select the best answer. {stem}\n{options}", "{label}", False),
    ("mc.012", "paren_lower", "{stem}\n{options}", "({label}) {option}", False),
    ("mc.013", "paren_lower", "{stem}\n{options}", "({label})", False),
    ("mc.014", "paren_lower", "{stem}\nWhich is correct?\n{options}", "({label}) {option}", True),
    ("mc.015", "paren_lower", "Choose the correct answer.\n{stem}\n{options}", "{option_p}", False),
    ("mc.016", "bracket_upper", "{stem}\n{options}", "[{label}] {option}", False),
    ("mc.017", "bracket_upper", "{stem}\n{options}", "The answer is [{label}].", False),
    ("mc.018", "number_rparen", "{stem}\n{options}", "{label}) {option}", False),
    ("mc.019", "number_rparen", "{stem}\n{options}", "Option {label}.", False),
    ("mc.020", "number_rparen", "{stem}\n{options}\nReply with the number.", "{label}", False),
    ("mc.021", "number_rparen", "{stem}\n{options}", "{label}) {option}", True),
    ("mc.022", "number_dot", "{stem}\n{options}", "{label}. {option}", False),
    ("mc.023", "number_dot", "{stem}\nChoices:\n{options}", "Choice {label}: {option}", False),
    ("mc.024", "number_dot", "{stem}\n{options}", "Number {label}.", True),
    ("mc.025", "bullet", "{stem}\n{options}", "{option}", False),
    ("mc.026", "bullet", "{stem}\nOptions:\n{options}", "{option_p}", False),
    ("mc.027", "bullet", "{stem}\nPossible answers:\n{options}", "The answer is {option_p}", False),
    ("mc.028", "bullet", "{stem}\nChoose from:\n{options}", "{option}", True),
    ("mc.029", "bullet", "Pick one answer. {stem}\n{options}", "{option_p}", False),
    ("mc.030", "star", "{stem}\n{options}", "{option}", False),
    ("mc.031", "star", "{stem}\nThe choices are:\n{options}", "Correct: {option}", False),
    ("mc.032", "star", "{stem}\n{options}", "{option_p}", True),
    ("mc.033", "inline_upper", "{stem} {options}", "({label}) {option}", False),
    ("mc.034", "inline_upper", "{stem} {options}", "{label}", False),
    ("mc.035", "inline_upper", "{stem} Options: {options}", "The answer is ({label}).", False),
    ("mc.036", "inline_upper", "{stem} {options}", "({label}) {option}", True),
    ("mc.037", "inline_lower", "{stem} {options}", "({label}) {option}", False),
    ("mc.038", "inline_lower", "{stem} Choose among {options}", "{option_p}", False),
    ("mc.039", "inline_lower", "{stem} {options}", "({label})", True),
    ("mc.040", "letter_dot", "Question: {stem}\n{options}", "Answer: {label}", False),
    ("mc.041", "letter_dot", "Based on the text, {stem_lc}\n{options}", "{label}. {option}", False),
    ("mc.042", "paren_lower", "According to the passage, {stem_lc}\n{options}", "({label})", False),
    ("mc.043", "number_rparen", "From the text: {stem}\n{options}", "{label}) {option}", False),
    ("mc.044", "bullet", "According to the text, {stem_lc}\n{options}", "{option}", False),
]

# --------------------------------------------------------------------------- chain of thought

_COT = [
    (
        "cot.001",
        "{question}\nLet's think step by step.",
        "{reasoning}\nTherefore, the answer is {final}",
    ),
    ("cot.002", "{question}", "{reasoning}\nSo the answer is {final_p}"),
    ("cot.003", "{question} Explain your reasoning.", "{reasoning}\nAnswer: {final}"),
    ("cot.004", "{question} Think it through first.", "{reasoning} Hence: {final_p}"),
    ("cot.005", "{question}", "Let's reason. {reasoning}\nFinal answer: {final}"),
    ("cot.006", "{question} Show your work.", "{reasoning}\nThe answer is {final_p}"),
    ("cot.007", "{question}\nReason step by step.", "{reasoning}\nThus, {final_p}"),
    (
        "cot.008",
        "{question}\nGive the reasoning, then the answer.",
        "Reasoning: {reasoning}\nAnswer: {final}",
    ),
    ("cot.009", "Based on the text, {question_lc} Explain.", "{reasoning}\nTherefore: {final_p}"),
    ("cot.010", "{question} Work it out.", "Step by step: {reasoning}\nResult: {final}"),
    ("cot.011", "{question}", "{reasoning} That means the answer is {final_p}"),
    ("cot.012", "{question} Why?", "{reasoning}\nIn short: {final_p}"),
    ("cot.013", "{question}\nThink carefully.", "{reasoning}\nFinal answer: {final_p}"),
    ("cot.014", "Answer with an explanation: {question}", "{reasoning}\nSo, {final_p}"),
    ("cot.015", "{question}", "First, {reasoning_lc}\nThe answer: {final}"),
    ("cot.016", "{question} Justify the answer.", "{reasoning}\nAnswer: {final_p}"),
    (
        "cot.017",
        "Using the text, reason about this: {question}",
        "{reasoning}\nConclusion: {final}",
    ),
    (
        "cot.018",
        "{question}\nExplain before answering.",
        "Explanation: {reasoning}\nAnswer: {final}",
    ),
    ("cot.019", "{question}", "{reasoning}\nTherefore, {final_p}"),
    ("cot.020", "Let's work through this. {question}", "{reasoning}\nWe conclude: {final_p}"),
    (
        "cot.021",
        "{question} Answer with reasons.",
        "{reasoning}\nThe answer is therefore {final_p}",
    ),
    ("cot.022", "{question}\nShow the steps.", "{reasoning}\n=> {final}"),
    (
        "cot.023",
        "According to the passage, {question_lc} Reason first.",
        "{reasoning}\nAnswer: {final}",
    ),
    ("cot.024", "{question}", "Here is my reasoning. {reasoning}\nMy answer: {final_p}"),
    ("cot.025", "{question} Walk me through it.", "{reasoning}\nSo the final answer is {final_p}"),
    ("cot.026", "Think step by step: {question}", "{reasoning}\nFinal: {final}"),
    ("cot.027", "{question}\nProvide a rationale.", "Rationale: {reasoning}\nAnswer: {final}"),
    (
        "cot.028",
        "{question} Explain how you know.",
        "{reasoning}\nThat is why the answer is {final_p}",
    ),
]

# --------------------------------------------------------------------------- MC with CoT

_MC_COT = [
    (
        "mccot.001",
        "bullet",
        "{stem}\n{options}\nLet's think step by step.",
        "{reasoning}\nTherefore, the answer is {option}",
        False,
    ),
    (
        "mccot.002",
        "letter_dot",
        "{stem}\n{options}\nExplain, then pick a letter.",
        "{reasoning}\nAnswer: {label}",
        False,
    ),
    (
        "mccot.003",
        "letter_dot",
        "{stem}\n{options}",
        "{reasoning}\nSo the answer is {label}. {option_p}",
        False,
    ),
    (
        "mccot.004",
        "letter_dot",
        "{stem}\n{options}\nThink step by step.",
        "{reasoning}\nThe answer is {label}.",
        True,
    ),
    (
        "mccot.005",
        "letter_rparen",
        "{stem}\n{options}\nReason first.",
        "{reasoning}\nTherefore {label}) {option_p}",
        False,
    ),
    (
        "mccot.006",
        "letter_rparen",
        "{stem}\n{options}",
        "Reasoning: {reasoning}\nAnswer: {label}",
        False,
    ),
    (
        "mccot.007",
        "letter_colon",
        "{stem}\n{options}\nShow your reasoning.",
        "{reasoning}\nFinal answer: {label}: {option}",
        False,
    ),
    (
        "mccot.008",
        "paren_lower",
        "{stem}\n{options}\nExplain your choice.",
        "{reasoning}\nSo ({label}) {option_p}",
        False,
    ),
    (
        "mccot.009",
        "paren_lower",
        "{stem}\n{options}",
        "{reasoning}\nThe correct choice is ({label}).",
        True,
    ),
    (
        "mccot.010",
        "bracket_upper",
        "{stem}\n{options}\nThink it through.",
        "{reasoning}\nAnswer: [{label}]",
        False,
    ),
    (
        "mccot.011",
        "number_rparen",
        "{stem}\n{options}\nGive reasons, then the number.",
        "{reasoning}\nAnswer: {label}",
        False,
    ),
    (
        "mccot.012",
        "number_rparen",
        "{stem}\n{options}",
        "{reasoning}\nHence option {label}) {option_p}",
        False,
    ),
    (
        "mccot.013",
        "number_dot",
        "{stem}\n{options}\nReason step by step.",
        "{reasoning}\nSo the answer is {label}. {option_p}",
        True,
    ),
    (
        "mccot.014",
        "number_dot",
        "{stem}\n{options}",
        "Step by step: {reasoning}\nChoice {label}.",
        False,
    ),
    (
        "mccot.015",
        "bullet",
        "{stem}\nOptions:\n{options}\nExplain.",
        "{reasoning}\nSo the answer is {option_p}",
        False,
    ),
    ("mccot.016", "bullet", "{stem}\n{options}", "{reasoning}\nAnswer: {option}", True),
    (
        "mccot.017",
        "star",
        "{stem}\n{options}\nThink before answering.",
        "{reasoning}\nTherefore: {option_p}",
        False,
    ),
    (
        "mccot.018",
        "star",
        "{stem}\n{options}",
        "Let's reason. {reasoning}\nFinal answer: {option}",
        False,
    ),
    (
        "mccot.019",
        "inline_upper",
        "{stem} {options} Explain your answer.",
        "{reasoning}\nThe answer is ({label}) {option_p}",
        False,
    ),
    ("mccot.020", "inline_upper", "{stem} {options}", "{reasoning}\nAnswer: ({label})", True),
    (
        "mccot.021",
        "inline_lower",
        "{stem} {options} Think step by step.",
        "{reasoning}\nSo ({label}) {option_p}",
        False,
    ),
    (
        "mccot.022",
        "inline_lower",
        "{stem} {options}",
        "Rationale: {reasoning}\nAnswer: ({label})",
        False,
    ),
    (
        "mccot.023",
        "letter_dot",
        "Based on the text, {stem_lc}\n{options}\nReason it out.",
        "{reasoning}\nAnswer: {label}. {option}",
        False,
    ),
    (
        "mccot.024",
        "bullet",
        "According to the passage, {stem_lc}\n{options}\nExplain.",
        "{reasoning}\nHence, {option_p}",
        False,
    ),
    (
        "mccot.025",
        "letter_dot",
        "Choose the right answer and explain why.\n{stem}\n{options}",
        "{reasoning}\nCorrect answer: {label}",
        False,
    ),
    (
        "mccot.026",
        "number_rparen",
        "{stem}\n{options}\nWork it out step by step.",
        "{reasoning}\nThus the answer is {label}.",
        False,
    ),
    (
        "mccot.027",
        "paren_lower",
        "Think carefully. {stem}\n{options}",
        "{reasoning}\nFinal choice: ({label}) {option}",
        False,
    ),
    (
        "mccot.028",
        "letter_colon",
        "{stem}\n{options}",
        "{reasoning}\nTherefore the answer is {label}: {option_p}",
        True,
    ),
]

# --------------------------------------------------------------------------- verbatim

_VERBATIM = [
    ("raw.001", "{question}", "{answer}"),
    ("raw.002", "{question}", "Answer: {answer}"),
    ("raw.003", "Question: {question}", "{answer}"),
    ("raw.004", "{question}", "Response: {answer}"),
]

# --------------------------------------------------------------------------- layouts

# (id, family, frame, pair, separator)
_LAYOUTS = [
    # reading comprehension: the text, then its questions
    ("rc.001", "reading", "{text}\n\n{pairs}", "{q}\n{a}", "\n\n"),
    ("rc.002", "reading", "{text}\n\n{pairs}", "Question: {q}\nAnswer: {a}", "\n\n"),
    (
        "rc.003",
        "reading",
        "{text}\n\nAnswer questions based on the text above.\n\n{pairs}",
        "{q}\n{a}",
        "\n\n",
    ),
    (
        "rc.004",
        "reading",
        "Read the passage and answer the questions.\n\n{text}\n\n{pairs}",
        "Q: {q}\nA: {a}",
        "\n\n",
    ),
    ("rc.005", "reading", "Passage:\n{text}\n\nQuestions:\n\n{pairs}", "{q}\nAnswer: {a}", "\n\n"),
    ("rc.006", "reading", "{text}\n\nNow some questions about it.\n\n{pairs}", "{q}\n{a}", "\n\n"),
    ("rc.007", "reading", "Article:\n{text}\n\n{pairs}", "Question: {q}\nAnswer: {a}", "\n"),
    ("rc.008", "reading", "{text}\n\nComprehension check:\n{pairs}", "{q}\nAnswer: {a}", "\n\n"),
    ("rc.009", "reading", "Text: {text}\n\n{pairs}", "Query: {q}\nReply: {a}", "\n\n"),
    # dialog turns after the text
    ("dlg.001", "dialog", "{text}\n\n{pairs}", "User: {q}\nAssistant: {a}", "\n\n"),
    ("dlg.002", "dialog", "{text}\n\n{pairs}", "Q: {q}\nA: {a}", "\n\n"),
    ("dlg.003", "dialog", "{text}\n\n{pairs}", "Question: {q}\nAnswer: {a}", "\n\n"),
    ("dlg.004", "dialog", "{text}\n\n{pairs}", "Human: {q}\nAI: {a}", "\n\n"),
    ("dlg.005", "dialog", "{text}\n\n{pairs}", "Student: {q}\nTeacher: {a}", "\n\n"),
    (
        "dlg.006",
        "dialog",
        "User: Please read this text.\n\n{text}\n\nAssistant: I have read it.\n\n{pairs}",
        "User: {q}\nAssistant: {a}",
        "\n\n",
    ),
    ("dlg.007", "dialog", "{text}\n\n{pairs}", "Q: {q}\nA: {a}", "\n"),
    (
        "dlg.008",
        "dialog",
        "Here is a text.\n\n{text}\n\nA conversation about it:\n\n{pairs}",
        "Person A: {q}\nPerson B: {a}",
        "\n\n",
    ),
    ("dlg.009", "dialog", "{text}\n\n{pairs}", "Interviewer: {q}\nExpert: {a}", "\n\n"),
    ("dlg.010", "dialog", "Context: {text}\n\n{pairs}", "Asked: {q}\nAnswered: {a}", "\n\n"),
    # numbered questions
    ("num.001", "numbered", "{text}\n\n{pairs}", "{n}. {q}\n{a}", "\n\n"),
    ("num.002", "numbered", "{text}\n\n{pairs}", "Question {n}: {q}\nAnswer {n}: {a}", "\n\n"),
    ("num.003", "numbered", "{text}\n\n{pairs}", "Q{n}. {q}\nA{n}. {a}", "\n\n"),
    ("num.004", "numbered", "{text}\n\nExercises:\n\n{pairs}", "{n}) {q}\nAnswer: {a}", "\n\n"),
    (
        "num.005",
        "numbered",
        "Read the text, then answer the numbered questions.\n\n{text}\n\n{pairs}",
        "{n}. {q}\nAnswer: {a}",
        "\n\n",
    ),
    ("num.006", "numbered", "{text}\n\n{pairs}", "#{n} {q}\n{a}", "\n\n"),
    # pairs before the text
    ("pf.001", "pairs_first", "{pairs}\n\n{text}", "{q}\n{a}", "\n\n"),
    (
        "pf.002",
        "pairs_first",
        "{pairs}\n\nThe text these answers come from:\n\n{text}",
        "Question: {q}\nAnswer: {a}",
        "\n\n",
    ),
    (
        "pf.003",
        "pairs_first",
        "Questions answered by the passage below.\n\n{pairs}\n\nPassage:\n{text}",
        "Q: {q}\nA: {a}",
        "\n\n",
    ),
    ("pf.004", "pairs_first", "{pairs}\n\nSource:\n{text}", "{q}\n{a}", "\n\n"),
    ("pf.005", "pairs_first", "FAQ\n\n{pairs}\n\nBackground:\n{text}", "{q}\n{a}", "\n\n"),
    ("pf.006", "pairs_first", "{pairs}\n\nRead more:\n{text}", "Q: {q}\nA: {a}", "\n"),
]

# Joiners between the segments of an M-shot chain (each segment is one text with its pairs).
_CHAIN = [
    ("chain.001", "\n\n"),
    ("chain.002", "\n\n\n"),
    ("chain.003", "\n\n---\n\n"),
    ("chain.004", "\n\n* * *\n\n"),
    ("chain.005", "\n\n###\n\n"),
    ("chain.006", "\n\n\n\n"),
]

PAIR_TEMPLATES: tuple[PairTemplate, ...] = (
    *(PairTemplate(i, "qa", q, a) for i, q, a in _QA),
    *(PairTemplate(i, "mc", q, a, s, n) for i, s, q, a, n in _MC),
    *(PairTemplate(i, "cot", q, a) for i, q, a in _COT),
    *(PairTemplate(i, "mc_cot", q, a, s, n) for i, s, q, a, n in _MC_COT),
    *(PairTemplate(i, "verbatim", q, a) for i, q, a in _VERBATIM),
)
LAYOUTS: tuple[Layout, ...] = tuple(Layout(*row) for row in _LAYOUTS)
CHAIN_JOINS: tuple[ChainJoin, ...] = tuple(ChainJoin(*row) for row in _CHAIN)

ALL_TEMPLATE_IDS: tuple[str, ...] = (
    *(t.id for t in PAIR_TEMPLATES),
    *(t.id for t in LAYOUTS),
    *(t.id for t in CHAIN_JOINS),
)

# --------------------------------------------------------------------------- checks at import

_Q_FIELDS = {
    "open": {"question", "question_lc"},
    "cot": {"question", "question_lc"},
    "mc": {"stem", "stem_lc", "options"},
    "mc_cot": {"stem", "stem_lc", "options"},
    "verbatim": {"question"},
}
_A_FIELDS = {
    "open": {"answer", "answer_p"},
    "cot": {"reasoning", "reasoning_lc", "final", "final_p"},
    "mc": {"label", "option", "option_p"},
    "mc_cot": {"reasoning", "reasoning_lc", "label", "option", "option_p"},
    "verbatim": {"answer"},
}


def template_fields(fmt: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}


def _check() -> None:
    """Fail at import on a malformed set: ids, fields, option styles, format tags."""
    assert len(set(ALL_TEMPLATE_IDS)) == len(ALL_TEMPLATE_IDS), "duplicate template id"
    texts: list[str] = []
    for t in PAIR_TEMPLATES:
        key = "open" if t.family == "qa" else t.family
        assert template_fields(t.question) <= _Q_FIELDS[key], t.id
        assert template_fields(t.answer) <= _A_FIELDS[key], t.id
        is_mc = t.family in ("mc", "mc_cot")
        assert (t.options is not None) == is_mc, t.id
        if is_mc:
            assert "options" in template_fields(t.question), t.id
            style = OPTION_STYLES[t.options]  # type: ignore[index]
            if not has_labels(style):
                assert "label" not in template_fields(t.answer), t.id
        assert not t.none_of_the_above or is_mc, t.id
        texts += [t.question, t.answer]
    for lay in LAYOUTS:
        assert lay.family in LAYOUT_FAMILIES, lay.id
        assert template_fields(lay.frame) == {"text", "pairs"}, lay.id
        assert {"q", "a"} <= template_fields(lay.pair) <= {"q", "a", "n"}, lay.id
        assert ("n" in template_fields(lay.pair)) == (lay.family == "numbered"), lay.id
        texts += [lay.frame, lay.pair, lay.separator]
    texts += [c.joiner for c in CHAIN_JOINS]
    texts += [s.line for s in OPTION_STYLES.values()] + [NONE_OF_THE_ABOVE]
    for text in texts:
        assert not any(tag in text for tag in TAGS), f"format tag in template: {text!r}"


_check()
