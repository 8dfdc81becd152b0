"""Task families of the model-free miner: reading-comprehension pairs from patterns.

After AdaptLLM (Cheng et al. 2023, "Adapting Large Language Models via
Reading Comprehension", §3 and Table 1): raw domain text is turned into
reading-comprehension exercises by mining patterns, with no model. Each
family is one function

    family(doc_id, text, sentences, rng) -> list[candidate]

where a candidate is a dict with "question", "answer" and "family", plus
"extractive": True when the answer (or, for chain of thought, its final
answer) must be a substring of the text modulo whitespace; the miner checks
that and drops what is not grounded. `sentences` come from
`instructpt.mine.sentences.split_sentences` (whitespace collapsed); `rng` is
a `random.Random` seeded by (seed, document id, family), so a family's picks
depend on nothing else. Families return every candidate they see (sampled
where candidates are cheap to find and costly to build); the miner applies
the per-family and per-text limits.

All regexes are compiled once at import. Questions and answers are single
line (sentences have their whitespace collapsed), so they can never contain
the synthesizer format's option or chain-of-thought markers by accident.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from typing import Any

from instructpt.mine.biography import biography
from instructpt.synth.format import COT_MARK, chain_of_thought_answer, multiple_choice_question


def _word_set(words: str) -> frozenset[str]:
    """A set of words written as one string (long lists read better that way)."""
    return frozenset(words.split())


Candidate = dict[str, Any]
Family = Callable[[str, str, list[str], random.Random], list[Candidate]]

#: Longer sentences are skipped by every family: tables, lists and boilerplate
#: glued into one "sentence" make poor questions.
MAX_SENTENCE_CHARS = 600

NLI_OPTIONS = ("Yes", "It is not possible to tell", "No")

_WS = re.compile(r"\s+")
_TRAILING_PUNCT = " \t\n.,;:!?"


def _pair(family: str, question: str, answer: str, extractive: bool = True) -> Candidate:
    return {"question": question, "answer": answer, "family": family, "extractive": extractive}


def _clause(text: str) -> str:
    """A clause without surrounding space and trailing punctuation."""
    # rstrip, not a `[...]+$` regex: that one retries at every position (quadratic-ish).
    return text.strip().rstrip(_TRAILING_PUNCT)


def _words(text: str) -> int:
    return len(text.split())


def _usable(sentences: list[str]) -> list[str]:
    return [s for s in sentences if len(s) <= MAX_SENTENCE_CHARS]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    """Lower-case a leading word unless it looks like a name or an acronym."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower() and first != "I":
        return first.lower() + text[len(first) :]
    return text


# ------------------------------------------------------------------ title / summarize

_TITLE_END = re.compile(r"[.,;:!?]$")
#: A title has fewer words than this.
TITLE_MAX_WORDS = 12
SUMMARY_MIN_BODY_SENTENCES = 3
#: Words a Title Case title leaves in lower case ("Architecture of India").
_TITLE_SMALL_WORDS = _word_set(
    "a an the and or nor but of in on at to for from by with as via vs into onto upon over "
    "per than de la le du von van der da di del"
)
#: Lines that open with these are greetings or replies, never titles ("Hi John.").
_NOT_TITLE_HEADS = _word_set(
    "hi hello hey dear thanks thank yes no ok okay sure sincerely regards cheers bye goodbye "
    "welcome please sorry"
)
#: A lower-case auxiliary makes a line a clause, not a title ("The river was high.").
_AUXILIARIES = _word_set(
    """
    is are was were am be been being has have had do does did will would shall should can
    could may might must isn't aren't wasn't weren't hasn't haven't hadn't don't doesn't
    didn't won't wouldn't can't couldn't shouldn't
    """
)
#: A final period that ends one of these belongs to the title ("Apple Inc.").
_TITLE_ABBREVIATIONS = _word_set("inc ltd corp co bros plc llc jr sr st")
_TITLE_WORD = re.compile(r"[\w'’-]+")
_BRACKETED = re.compile(r" ?\([^()]*\)")


def _stem(word: str) -> str:
    """A crude stem: 'paintings' and 'painting', 'Egyptian' and 'Egypt', 'sagas' and 'saga'."""
    if len(word) > 5:
        return word[:5]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _content_stems(text: str) -> set[str]:
    words = _TITLE_WORD.findall(text.lower())
    return {_stem(w) for w in words if w not in _TITLE_SMALL_WORDS and w not in _FUNCTION_WORDS}


def _is_title_case(words: list[str]) -> bool:
    """No word after the first in lower case but the small ones, and at least one capitalised."""
    rest = [w.lstrip("(\"'“‘[") for w in words[1:]]
    big = [w for w in rest if w.lower() not in _TITLE_SMALL_WORDS]
    return any(w[:1].isupper() for w in big) and not any(w[:1].islower() for w in big)


def _period_title(line: str, sentences: list[str]) -> str | None:
    """The title in a first line that ends in one period ("Ada Lovelace."), or None.

    A period makes the line look like a sentence, so it must also look like a
    title: the splitter sees it as one sentence (no sentence-internal stop;
    abbreviations and initials are fine), a longer full sentence follows, no
    word is a greeting or a lower-case auxiliary, and either the line is Title
    Case or, in sentence case ("Cave painting."), it opens with no pronoun or
    connective and the body's first sentence repeats every content word of it
    (up to a crude stem), the way a lead names its subject. A bracketed
    qualifier ("Bark (botany).") is left out of both tests but kept in the
    title. The period is dropped from the title unless it ends an abbreviation
    ("Apple Inc.", "Washington, D.C.").
    """
    core = line[:-1].rstrip()
    if not core or core[-1] in ".,;:!?" or len(sentences) < 2 or sentences[0] != line:
        return None
    lead = sentences[1]
    unqualified = _BRACKETED.sub("", core)
    words = unqualified.split()
    if not words or not _SENTENCE_END.search(lead) or _words(lead) <= _words(core):
        return None
    if words[0].lower() in _NOT_TITLE_HEADS or any(w in _AUXILIARIES for w in words[1:]):
        return None
    if not _is_title_case(words):
        title_stems = _content_stems(unqualified)
        # A sentence-case line that opens with a pronoun or connective is a
        # sentence ("It rained all day.", "If so, stop."): `_NOT_TERMS` heads.
        if words[0].lower() in _NOT_TERMS or not title_stems:
            return None
        if not title_stems <= _content_stems(lead):
            return None
    last = core.split()[-1]
    return line if "." in last or last.lower() in _TITLE_ABBREVIATIONS else core


def _title_line(text: str, sentences: list[str]) -> str | None:
    """The title on the first line, if it reads as one: short, a body below.

    A line with no final stop is a title as it stands; one that ends in a
    period only when it still reads as a title, and then without the period
    (`_period_title`).
    """
    stripped = text.lstrip()
    line, newline, body = stripped.partition("\n")
    line = line.strip()
    if not newline or not body.strip() or not line:
        return None
    if _words(line) >= TITLE_MAX_WORDS or not (line[0].isupper() or line[0].isdigit()):
        return None
    line = _WS.sub(" ", line)
    if not _TITLE_END.search(line):
        return line
    return _period_title(line, sentences) if line[-1] == "." else None


def title(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """A text that opens with a title line: ask for a suitable title (AdaptLLM's title task)."""
    line = _title_line(text, sentences)
    if line is None:
        return []
    return [_pair("title", "What is a suitable title for this text?", line)]


def summarize(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """Titled texts (news, articles) lead with their summary: the body's first sentence.

    Only when the body has at least three sentences, so the summary is shorter
    than what it summarizes.
    """
    line = _title_line(text, sentences)
    if line is None or not sentences or sentences[0] not in (line, line + "."):
        return []
    body = sentences[1:]
    if len(body) < SUMMARY_MIN_BODY_SENTENCES or len(body[0]) > MAX_SENTENCE_CHARS:
        return []
    return [_pair("summarize", "Summarize the text in one sentence.", body[0])]


# ------------------------------------------------------------------ word-to-text

#: Sentence starters that are not terms to define.
_NOT_TERMS = _word_set(
    """
    he she it they we i you this that these those there here its his her their our
    one each some all most many both such another other which what who when where
    why how if while although though after before since today yesterday then also
    however but and or so yet in on at for from with by as to of
    """
)
_DEF_IS = re.compile(
    r"^(?P<term>(?:(?:The|A|An) )?[\w][\w'’-]*(?: [\w][\w'’-]*){0,4}?) (?:is|are) "
    r"(?P<def>(?:a|an|the) .+)$"
)
_DEF_REFERS = re.compile(
    r"^(?P<term>(?:(?:The|A|An) )?[\w][\w'’-]*(?: [\w][\w'’-]*){0,4}?) "
    r"(?:refers|refer) to (?P<def>.+)$"
)
_DEF_DEFINED = re.compile(
    r"^(?P<term>(?:(?:The|A|An) )?[\w][\w'’-]*(?: [\w][\w'’-]*){0,4}?) "
    r"(?:is|are) (?:defined|described) as (?P<def>.+)$"
)
_AKA = re.compile(
    r"(?P<term>\b[A-Z][\w'’-]*(?: [A-Z][\w'’-]*){0,4})[,(] ?(?:also|otherwise) "
    r"(?:known|called) as (?P<alias>[^,;()]+)"
)
_NAME_RUN = re.compile(r"(?<=[a-z,;] )[A-Z][a-z'’-]+(?: (?:of |de |the )?[A-Z][a-z'’-]+)+")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*$")
_LONG_WORD = re.compile(r"\b[a-z]{11,}\b")
#: A rare word: this long, lower case (a stand-in for a frequency list).
RARE_WORD_CHARS = 11


def _term_ok(term: str) -> bool:
    first = term.split(" ", 1)[0].lower()
    return first not in _NOT_TERMS and not term[0].isdigit()


def _term_phrase(term: str) -> str:
    """Lower-case a sentence-initial article or common noun; names keep their case.

    'The mitochondrion' -> 'the mitochondrion', 'Cache eviction' -> 'cache
    eviction', but 'Mount Fuji' and 'Git' stay: without a lexicon, a second
    word in lower case is the sign that the first is not part of a name.
    """
    head, _, rest = term.partition(" ")
    if head in ("The", "A", "An") and rest:
        return head.lower() + " " + rest
    if rest and rest[0].islower() and head[1:].islower():
        return head.lower() + " " + rest
    return term


def word_to_text(
    doc_id: str, text: str, sentences: list[str], rng: random.Random
) -> list[Candidate]:
    """Definitions ("X is a Y", "X refers to Y", "X, also known as Y") and word use.

    AdaptLLM's word-to-text task: a definitional sentence answers "What is X?";
    and for a salient word (a multi-word name inside a sentence, or a long rare
    word) "Write a sentence using ..." is answered by a sentence of the text
    that uses it.
    """
    out: list[Candidate] = []
    usable = _usable(sentences)
    for s in usable:
        # Cheap substring tests first: most sentences match no pattern (see
        # benchmarks/mine.py; the regexes were most of the miner's time).
        has_is = " is " in s or " are " in s
        if not (has_is or " refer" in s or " as " in s):
            continue
        body = _clause(s)
        m = _DEF_DEFINED.match(body) if " defined as " in s or " described as " in s else None
        if m and _term_ok(m["term"]) and _words(m["def"]) >= 2:
            out.append(
                _pair("word_to_text", f"How is {_term_phrase(m['term'])} defined?", m["def"])
            )
            continue
        m = _DEF_REFERS.match(body) if " refer" in s else None
        if m and _term_ok(m["term"]) and _words(m["def"]) >= 2:
            q = f"What does {_term_phrase(m['term'])} refer to?"
            out.append(_pair("word_to_text", q, m["def"]))
            continue
        m = _DEF_IS.match(body) if has_is else None
        if m and _term_ok(m["term"]) and _words(m["def"]) >= 3 and "," not in m["term"]:
            wh = "Who" if _role(m["def"].split(" ", 1)[1]) else "What"
            q = f"{wh} {'are' if _plural_copula(body, m) else 'is'} {_term_phrase(m['term'])}?"
            out.append(_pair("word_to_text", q, m["def"]))
        for m in _AKA.finditer(body) if " as " in s else ():
            alias = _clause(m["alias"])
            if _term_ok(m["term"]) and 1 <= _words(alias) <= 6:
                q = f"What is another name for {_term_phrase(m['term'])}?"
                out.append(_pair("word_to_text", q, alias))
    # Salient words: a few sentences drawn at random, first salient word in each.
    salient: list[Candidate] = []
    for s in rng.sample(usable, min(len(usable), 6)):
        if _words(s) < 6 or not _SENTENCE_END.search(s):  # not a title or a list item
            continue
        m = _NAME_RUN.search(s)
        if m is not None:
            q = f"Write a sentence using the name '{m.group(0)}'."
        else:
            m = _LONG_WORD.search(s)
            if m is None:
                continue
            q = f"Write a sentence using the word '{m.group(0)}'."
        salient.append(_pair("word_to_text", q, s))
    return out + salient


def _plural_copula(body: str, m: re.Match[str]) -> bool:
    return body[m.end("term") : m.end("term") + 5] == " are "


# ------------------------------------------------------------------ nli

_ENTAIL = re.compile(
    r"^(?:Therefore|Thus|Hence|Consequently|As a result|Accordingly|As a consequence),? (?=\S)"
)
_CONTRADICT = re.compile(
    r"^(?:However|But|Nevertheless|Nonetheless|In contrast|By contrast|On the other hand|"
    r"Conversely|Yet),? (?=\S)"
)
_NEUTRAL = re.compile(r"^(?:Moreover|Furthermore|In addition|Additionally|Besides),? (?=\S)")
_NLI_LABELS = ((_ENTAIL, "Yes"), (_NEUTRAL, "It is not possible to tell"), (_CONTRADICT, "No"))
_CONNECTIVE_HEADS = _word_set(
    "Therefore Thus Hence Consequently As Accordingly However But Nevertheless Nonetheless "
    "In By On Conversely Yet Moreover Furthermore Additionally Besides"
)


def nli(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """Adjacent sentences joined by a connective become an entailment question.

    AdaptLLM's natural-language-inference task: "therefore"-like connectives
    mark entailment, "however"-like ones contradiction, "moreover"-like ones a
    neutral addition. The connective is removed from the hypothesis (it would
    give the answer away); the answer is one of the options, verbatim.
    """
    out: list[Candidate] = []
    for first, second in itertools.pairwise(sentences):
        if len(first) > MAX_SENTENCE_CHARS or len(second) > MAX_SENTENCE_CHARS:
            continue
        if second.split(" ", 1)[0].rstrip(",") not in _CONNECTIVE_HEADS:
            continue
        for pattern, label in _NLI_LABELS:
            m = pattern.match(second)
            if m is None:
                continue
            hypothesis = _capitalize(second[m.end() :])
            if _words(hypothesis) >= 3 and _words(first) >= 3:
                stem = f'Does the sentence "{first}" entail the sentence "{hypothesis}"?'
                q = multiple_choice_question(stem, NLI_OPTIONS)
                out.append(_pair("nli", q, label, extractive=False))
            break
    return out


# ------------------------------------------------------------------ cause / effect

_BECAUSE = re.compile(r"^(?P<effect>.+?),? because (?:of )?(?P<cause>.+)$")
_LEADING_CAUSE = re.compile(
    r"^(?:Because of|Because|Due to|Owing to|As a result of|As a consequence of) "
    r"(?P<cause>[^,]+), (?P<effect>.+)$"
)
_SO = re.compile(r"^(?P<cause>.+?), so (?!that |far |much |many |long )(?P<effect>.+)$")
_DUE_TO = re.compile(r"^(?P<effect>.+?),? (?:due to|owing to|as a result of) (?P<cause>.+)$")
_RESULT_NEXT = re.compile(
    r"^(?:As a result|Consequently|As a consequence|Because of this|For this reason),? (?=\S)"
)
_CAUSAL_KEYS = ("because", "due to", "owing to", "as a result of", "as a consequence of", ", so ")
CAUSE_MIN_WORDS = 3


def cause_effect(
    doc_id: str, text: str, sentences: list[str], rng: random.Random
) -> list[Candidate]:
    """Causal links ("A because B", "B, so A", "due to B, A", "B. As a result, A.").

    Each link asks for the cause of the effect and for an effect of the cause;
    for about half of the links (drawn by `rng`) the cause question is asked
    with chain of thought, whose reasoning quotes the sentence(s) it rests on.
    """
    links: list[tuple[str, str, str]] = []  # (cause, effect, evidence)
    usable = _usable(sentences)
    for s in usable:
        lower = s.lower()
        if not any(k in lower for k in _CAUSAL_KEYS):
            continue
        body = _clause(s)
        m = (
            _LEADING_CAUSE.match(body)
            or (_BECAUSE.match(body) if "because" in lower else None)
            or (_DUE_TO.match(body) if " to " in lower or " of " in lower else None)
            or (_SO.match(body) if ", so " in s else None)
        )
        if m is not None:
            links.append((_clause(m["cause"]), _clause(m["effect"]), s))
    for first, second in itertools.pairwise(usable):
        if second[:1] not in "ACBF":
            continue
        m = _RESULT_NEXT.match(second)
        if m is not None:
            links.append((_clause(first), _clause(second[m.end() :]), f"{first} {second}"))
    out: list[Candidate] = []
    for cause, effect, evidence in links:
        if _words(cause) < CAUSE_MIN_WORDS or _words(effect) < CAUSE_MIN_WORDS:
            continue
        ask_cause = f'What is the cause of "{_lower_first(effect)}"?'
        if rng.random() < 0.5:
            reasoning = f'The text says: "{evidence}"'
            out.append(
                _pair(
                    "cause_effect",
                    ask_cause + COT_MARK,
                    chain_of_thought_answer(reasoning, cause),
                )
            )
        else:
            out.append(_pair("cause_effect", ask_cause, cause))
        out.append(_pair("cause_effect", f'What is an effect of "{_lower_first(cause)}"?', effect))
    return out


# ------------------------------------------------------------------ paraphrase

_IN_OTHER_WORDS = re.compile(
    r"^(?P<first>.+?)[,;:]? (?:in other words|that is to say|that is|i\.e\.),? (?P<second>.+)$"
)
_IE_PAREN = re.compile(r"^(?P<first>[^()]+?) \((?:i\.e\.|that is),? (?P<second>[^()]+)\)")
_NEXT_IN_OTHER_WORDS = re.compile(r"^(?:In other words|That is to say|Put simply),? (?=\S)")
_LEADING_CONNECTIVE = re.compile(
    r"^(?:Moreover|Furthermore|In addition|Additionally|However|But|Nevertheless|Thus|"
    r"Therefore|Hence|So|And|Also),? "
)
PARAPHRASE_MIN_WORDS = 3


def paraphrase(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """Restatements marked by "in other words", "that is" or "i.e.": rephrase the first part.

    "That is" counts only after punctuation (", that is, "), never as "the box
    that is red".
    """
    out: list[Candidate] = []
    usable = _usable(sentences)
    for s in usable:
        if not ("other words" in s or "that is" in s or "i.e." in s):
            continue
        body = _clause(s)
        m = _IE_PAREN.match(body) or _IN_OTHER_WORDS.match(body)
        if m is None:
            continue
        marker = body[m.end("first") : m.start("second")]
        if "that is" in marker and not re.match(r"^[,;:(]", marker.lstrip(" ")):
            continue
        first, second = _clause(m["first"]), _clause(m["second"])
        if _words(first) >= PARAPHRASE_MIN_WORDS and _words(second) >= 2:
            out.append(_pair("paraphrase", f"Rephrase: {first}", second))
    for first, second in itertools.pairwise(usable):
        m = _NEXT_IN_OTHER_WORDS.match(second) if second[:1] in "ITP" else None
        if m is not None and _words(first) >= PARAPHRASE_MIN_WORDS:
            first = _clause(_LEADING_CONNECTIVE.sub("", first))
            rest = _clause(second[m.end() :])
            out.append(_pair("paraphrase", f"Rephrase: {_capitalize(first)}", rest))
    return out


# ------------------------------------------------------------------ completion

_FUNCTION_WORDS = _word_set(
    "a an the of in on at to for from by with and or but that which who whose its his her "
    "their our my your this these those"
)
COMPLETION_MIN_WORDS = 12
COMPLETION_MIN_ANSWER_WORDS = 3
#: Sentences drawn per text; the miner keeps at most its per-family limit of them.
COMPLETION_DRAWS = 4


def completion(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """Split a long sentence near its middle (at a word boundary): complete the rest."""
    long = [s for s in _usable(sentences) if s.count(" ") + 1 >= COMPLETION_MIN_WORDS]
    out: list[Candidate] = []
    for s in rng.sample(long, min(len(long), COMPLETION_DRAWS)):
        words = s.split(" ")
        last = len(words) - COMPLETION_MIN_ANSWER_WORDS
        cut = max(1, min(len(words) // 2 + rng.randint(-1, 1), last))
        # Never cut inside a name or right after a function word ("... a | city").
        while cut < last and (
            words[cut - 1].lower() in _FUNCTION_WORDS
            or (words[cut - 1][:1].isupper() and words[cut][:1].isupper())
        ):
            cut += 1
        first, rest = " ".join(words[:cut]), " ".join(words[cut:])
        q = f"How would you complete this sentence: '{first}'?"
        out.append(_pair("completion", q, rest))
    return out


# ------------------------------------------------------------------ fact

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = rf"(?:\d{{1,2}} (?:{_MONTHS}) \d{{3,4}}|(?:{_MONTHS}) \d{{1,2}}, \d{{3,4}})"
_NOT_NAME = (
    r"(?!(?:He|She|It|They|We|I|You|This|That|These|Those|There|Here|His|Her|Its|Their|Our|"
    r"The|A|An|In|On|At|After|Before|When|While|Since|Today|Then|Born|Records|Graduation)\b)"
)
# An explicit capitalised name: 1-4 capitalised words (particles allowed inside).
_NAME = (
    rf"{_NOT_NAME}[A-Z][\w'’-]*(?: (?:(?:de|van|von|der|da|del|di|le|la|bin|ibn) )?"
    r"[A-Z][\w'’-]*){0,3}"
)
# A period belongs to a proper word inside it or before another capitalised word
# ("U.S. Steel", "St. Mary's"), never at the end of a sentence.
_PROPER = r"(?!(?:" + _MONTHS + r")\b)[A-Z](?:[\w'’&-]|\.(?=\w| [A-Z]))*"
_ORG = rf"{_PROPER}(?: (?:(?:of|and|for|de|&) )?{_PROPER})*"
_PLACE = _ORG

_BORN = re.compile(
    rf"^(?P<name>{_NAME}) (?:was born|came into the world|entered the world|first saw daylight)"
    rf"(?: on (?P<date1>{_DATE}),?)? in (?P<place>{_PLACE})"
    rf"(?:, in the city of (?P<city>{_PLACE}))?"
    rf"(?:[^.;]*? on (?P<date2>{_DATE}))?"
)
_HAILS = re.compile(
    rf"^(?P<name>{_NAME}) (?:hails from|is a native of) (?P<place>{_PLACE})"
    rf"(?:[^.;]*? born (?:there )?on (?P<date2>{_DATE}))?"
)
_JOIN = re.compile(
    rf"^(?P<name>{_NAME}) (?P<verb>joined|began working for|began working at|began at|"
    r"started working at|started working for|started at|first came to|was hired by|"
    r"signed on with|took up a post at|entered the service of|has worked at|has worked for|"
    r"has been with|has held a post at|has been employed at|has been employed by|founded|"
    r"co-founded|established) "
    rf"(?P<org>(?:the )?{_ORG})(?:,[^.;]*?,)? (?:in|since) (?P<year>\d{{4}})\b"
)
_HAS_YEAR = re.compile(r" (?:in|since) \d{4}\b")
_WORKS = re.compile(
    rf"^(?P<name>{_NAME}) (?:works|worked|currently works|still works) (?:for|at) "
    rf"(?P<org>(?:the )?{_ORG})(?=[,;.]| (?:as|in|since|and|which|where|whose)\b|$)"
)
_EMPLOYED = re.compile(
    rf"^(?P<name>{_NAME}) (?:is|was) (?:employed by|on the staff of|on the payroll of) "
    rf"(?P<org>(?:the )?{_ORG})(?=[,;.]| (?:as|in|since|and|which|where|whose)\b|$)"
)
_PROFESSION_IS = re.compile(
    rf"^(?P<name>{_NAME}) (?:is|was|works as|worked as|practises as|practices as|"
    r"earns a living as|has made a career as|has worked for many years as|"
    r"is best known as|is by profession,|serves as|served as) "
    r"(?:an?) (?P<role>(?:[A-Z][a-z]+ )?[a-z][a-z-]*(?: [a-z][a-z-]*){0,5})"
)
#: Words that qualify a profession without being part of it ("a respected pilot").
_ROLE_MODIFIERS = _word_set(
    """
    practising practicing well-regarded respected experienced professional dedicated
    noted skilled renowned famous well-known celebrated prominent successful leading
    retired former talented accomplished distinguished acclaimed popular veteran
    """
)
#: Words after which a profession phrase has ended ("a pilot from ...").
_ROLE_STOPS = _word_set("of from whose who which that by at in with for and based known since on")
#: Agent-noun endings that mark a word as a profession (a frequency list would be
#: better, but the miner has no dependencies).
_PROFESSION_SUFFIXES = (
    "er", "or", "ist", "ian", "ant", "ent", "eon", "ect", "man", "woman", "smith",
    "wright", "ary", "ic", "ee", "ive",
)  # fmt: skip
_PROFESSIONS = _word_set(
    """
    pilot nurse chef cook judge poet monk priest clerk diplomat midwife architect
    author actor actress artist scholar scientist farmer soldier sailor physician
    surgeon dentist pharmacist actuary rigger dyer navigator
    """
)
_NOT_PROFESSIONS = _word_set(
    """
    member number center centre water paper letter river order matter power other
    manner monster character computer component element event student parent
    agent moment segment document monument amount account river summer winter
    corner border chapter layer cluster factor sector vector error mirror colour
    color motor tractor floor door meteor interior exterior anchor flavor flavour
    tumor tumour honor honour rumor labor labour harbor harbour favour favor
    department government comment continent patient client tenant giant plant
    instant servant percent mentee mentor successor predecessor descendant ancestor
    supporter follower neighbour neighbor admirer survivor winner resident native citizen
    relative parent sibling spouse partner friend owner
    """
)


def is_profession(phrase: str) -> bool:
    """Whether a lower-case noun phrase names a profession (by its head noun)."""
    words = phrase.split()
    if not words:
        return False
    head = words[-1].strip(".,;:")
    if head in _NOT_PROFESSIONS or not head.isalpha() or not head.islower():
        return False
    return head in _PROFESSIONS or head.endswith(_PROFESSION_SUFFIXES)


def _role(raw: str) -> str | None:
    """The profession in 'respected Swedish painter from Oslo' ('painter'), or None."""
    words: list[str] = []
    for w in raw.split():
        if w in _ROLE_STOPS or (not w.isalpha() and "-" not in w):
            break
        words.append(w)
    while words and (words[0] in _ROLE_MODIFIERS or words[0][0].isupper()):
        words.pop(0)
    while words and words[-1] in ("by", "trade", "profession", "occupation"):
        words.pop()
    if not words or len(words) > 3:
        return None
    phrase = " ".join(words)
    return phrase if is_profession(phrase) else None


def fact(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """Attributes of named people, for encyclopedic text (birth, employer, profession).

    Only sentences whose subject is an explicit capitalised name: a pronoun
    ("She joined ...") is never resolved, since a wrong guess would teach a
    wrong fact. Answers are copied from the sentence verbatim.
    """
    out: list[Candidate] = []
    for s in _usable(sentences):
        if not s[:1].isupper() or " " not in s:
            continue
        m = None
        if "born" in s or " world " in s or "daylight" in s:
            m = _BORN.match(s)
        if m is None and (" hails " in s or " native of " in s):
            m = _HAILS.match(s)
        if m is not None:
            name = m["name"]
            place = m.groupdict().get("city") or m["place"]
            out.append(_pair("fact", f"Where was {name} born?", place))
            date = m.groupdict().get("date1") or m["date2"]
            if date:
                out.append(_pair("fact", f"When was {name} born?", date))
            continue
        m = _JOIN.match(s) if _HAS_YEAR.search(s) else None
        if m is not None:
            name, org, verb = m["name"], m["org"], m["verb"]
            if verb in ("founded", "co-founded", "established"):
                out.append(_pair("fact", f"Who founded {org}?", name))
                out.append(_pair("fact", f"When did {name} found {org}?", m["year"]))
            else:
                out.append(_pair("fact", f"When did {name} join {org}?", m["year"]))
                # "Britain joined the EU": joining is employment only for a person,
                # so plain "joined" needs a full (two-word) name.
                if verb != "joined" or " " in name:
                    out.append(_pair("fact", f"Who employs {name}?", org))
            continue
        m = None
        if " work" in s:
            m = _WORKS.match(s)
        if m is None and (" employed by " in s or " staff of " in s or " payroll of " in s):
            m = _EMPLOYED.match(s)
        if m is not None:
            out.append(_pair("fact", f"Who employs {m['name']}?", m["org"]))
            continue
        m = _PROFESSION_IS.match(s) if " a " in s or " an " in s else None
        if m is not None and " " in m["name"]:
            role = _role(m["role"])
            if role is not None:
                out.append(_pair("fact", f"What is {m['name']}'s profession?", role))
    return out


#: Every family by name, in the order the miner interleaves them.
FAMILIES: dict[str, Family] = {
    "title": title,
    "summarize": summarize,
    "word_to_text": word_to_text,
    "nli": nli,
    "cause_effect": cause_effect,
    "paraphrase": paraphrase,
    "completion": completion,
    "fact": fact,
    "biography": biography,
}
