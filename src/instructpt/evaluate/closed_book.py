"""A closed-book probe from human-written questions whose answers a Wikipedia corpus states.

The world probe (`evaluate.probe`) asks about invented entities; this one asks
real TriviaQA and NQ-open questions (the `closed-book-qa` asset) about real
Wikipedia articles (the `wiki-leads` asset). `build_wiki_probe` keeps only the
questions a model could answer after reading a small corpus, builds that corpus,
and writes lm-eval tasks for the questions:

    corpus.jsonl                 Documents for `instructpt ingest`: the support leads
                                 plus `num_distractors` unrelated leads
    wiki_probe_tune.{jsonl,yaml}     the questions any tuning may look at
    wiki_probe_heldout.{jsonl,yaml}  the questions only the final score looks at
    probe.json                   every count below and the settings

Selection rule (a question is kept when it passes every step, in this order;
`probe.json` counts what each step removed, per source):

1. `duplicate_question`: a question whose normalised text repeats an earlier
   one is dropped, so the same question can never sit in both slices.
2. `answer_too_short`: the answers looked for are every gold answer of
   NQ-open (several annotators) but only TriviaQA's canonical one (its first:
   the other aliases are Wikipedia redirects such as "Persons" for "Person" or
   "Pig (film)", which would match leads by accident); those shorter than
   `MIN_ANSWER_CHARS` normalised characters are ignored (a lone "5" occurs in
   most leads by chance), and a question left with none is dropped. Scoring
   still accepts every alias.
3. `answer_in_question`: an answer occurs in the question itself, so the
   question gives it away (this also drops every question whose answer is the
   subject's own title, which its lead trivially contains).
4. `no_subject`: no lead's title occurs in the question. A title is the lead's
   `meta.title` without a trailing disambiguation "(...)", normalised. It is
   refused as a subject (counted in probe.json's `titles`) when it has fewer
   than `MIN_TITLE_CHARS` characters, when it is made of stopwords alone ("The
   Who" would match every "who" question), and when it is a general concept: a
   common noun (its own lead writes it in lower case, "A planet is ...") found
   in more than `max_subject_share` of all leads ("Name", "System", "Planet",
   whose leads mention many answers without being about the question). Where
   matched titles overlap, only the longest is the subject ("New York City",
   not "York"); several disjoint titles are all subjects.
5. `answer_not_in_subject_lead`: no answer occurs in a lead about a subject.

Normalisation, for matching only, is SQuAD's answer normalisation (case,
punctuation, the articles a/an/the, whitespace) over Unicode: a possessive "'s"
is dropped ("Ada Lovelace's father" names Ada Lovelace), dashes become spaces
(Wikipedia writes "1901–2000"), other punctuation is deleted, and a match must
fall on word boundaries ("Paris" is not in "Parisian"). Scoring is
`world_probe_gen`'s exact match, unchanged.

The corpus is the support leads (those that passed step 5 for a kept question)
plus `num_distractors` leads drawn with `seed` from the leads that support
nothing. Before either is chosen every lead is decontaminated against the kept
questions with `filter.decontam.EvalIndex` (word 13-grams; a question shorter
than 13 words is matched whole when it has at least `min_ngram` words, and
counted as unchecked otherwise): a contaminated lead never enters the corpus,
and a question whose every support lead was contaminated is dropped
(`support_decontaminated`).

The kept questions are ranked by a hash of `seed` and their id, and the first
`heldout_fraction` of them (rounded) form the held-out slice: the split is
seeded, exact in size, and independent of the order of the input file. Few-shot examples of
both tasks come from the tune slice (the tune task leaves the scored item out),
so no held-out question ever appears in a prompt but its own.

Tasks are generative exact match as `world_probe_gen` (same prompt, stop at a
newline, SQuAD's normalisation as lm-eval's `regexes_to_ignore`). `answers` is
a list: lm-eval treats a list `doc_to_target` of a `generate_until` task as
several targets and scores 1 when the reply matches any of them (as its own
`triviaqa` task does), so no custom `process_results` is needed. The same inputs
and seed give the same bytes (the YAMLs and probe.json embed absolute paths).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.jsonl import read_jsonl_objects
from instructpt.errors import InputError
from instructpt.evaluate.probe import _GEN_BODY, GEN_VERSION, PROMPT, _Dumper, _jsonl_bytes
from instructpt.filter.decontam import EvalIndex
from instructpt.filter.normalize import WordHasher, words

TUNE_TASK = "wiki_probe_tune"
HELDOUT_TASK = "wiki_probe_heldout"
CORPUS_FILE = "corpus.jsonl"
RECORD_FILE = "probe.json"

MIN_TITLE_CHARS = 3
#: Shots written into the task YAMLs (their default; `--num-fewshot` overrides). Zero-shot,
#: SmolLM2-135M-Instruct answers in sentences: 0.6% exact match on the tune slice, 21.9%
#: with 3 shots (2-core VM, 2026-12-07).
NUM_FEWSHOT = 3
MIN_ANSWER_CHARS = 2
#: A common-noun title found in more of all leads than this is too general to be a subject
#: (build_wiki_probe's default; 0.5% of the 10,033 vital-article leads is 50 leads).
MAX_SUBJECT_SHARE = 0.005
#: Sources whose first answer is the canonical one and the rest loose aliases (TriviaQA's
#: Wikipedia redirects: "Persons", "Pig (film)"): only the first is looked for in leads.
CANONICAL_FIRST = frozenset({"trivia_qa"})
#: Longest title looked for in a question, in words (longer vital-article titles are rare).
MAX_TITLE_WORDS = 12
RULES = (
    "duplicate_question",
    "answer_too_short",
    "answer_in_question",
    "no_subject",
    "answer_not_in_subject_lead",
    "support_decontaminated",
)
#: Function words and question words: a title made only of these is no subject.
_STOPWORDS = (
    "a an the and or of in on at to for from by with as is are was were be been it its this "
    "that these those he she they we you i me my his her their our your who whom whose what "
    "which when where why how do does did has have had not no yes all any some one up out "
    "about into over after before under than then there here so if but"
)
STOPWORDS = frozenset(_STOPWORDS.split())

_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")
_POSSESSIVE = re.compile(r"['’]s\b")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_SPACES = re.compile(r"\s+")

_HEADER = (
    "# Written by instructpt.evaluate.closed_book from {questions} and {leads}; "
    "do not edit by hand.\n"
)


@lru_cache(maxsize=1)
def _punctuation_table() -> dict[int, str | None]:
    """str.translate table: Unicode dashes -> space, every other punctuation -> deleted."""
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category == "Pd":
            table[code] = " "
        elif category.startswith("P"):
            table[code] = None
    return table


def normalise(text: str) -> str:
    """The selection rule's normalisation (see the module docstring).

    >>> normalise("  The Beatles’ 1962–1970 run, in U.K.!")
    'beatles 1962 1970 run in uk'
    >>> normalise("Ada Lovelace's father")
    'ada lovelace father'
    """
    text = _POSSESSIVE.sub("", unicodedata.normalize("NFKC", text).casefold())
    text = text.translate(_punctuation_table())
    return _SPACES.sub(" ", _ARTICLES.sub(" ", text)).strip()


def _contains(haystack: str, needle: str) -> bool:
    """Whether normalised `needle` occurs in normalised `haystack` on word boundaries."""
    return bool(needle) and f" {needle} " in f" {haystack} "


# ------------------------------------------------------------------ input


def _read_rows(path: Path, valid: Callable[[dict[str, Any]], bool], expected: str) -> list[dict]:
    """Every object of a JSON-lines file, each `valid` and of a unique id, else `path:line`."""
    rows, seen = [], set()
    for lineno, row in read_jsonl_objects(path):
        if not valid(row):
            raise InputError(f"{path}:{lineno}: expected {expected}")
        if row["id"] in seen:
            raise InputError(f"{path}:{lineno}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    return rows


def _is_question(row: dict[str, Any]) -> bool:
    answers = row.get("answers")
    return all(isinstance(row.get(k), str) and row[k] for k in ("id", "source", "question")) and (
        isinstance(answers, list) and all(isinstance(a, str) for a in answers)
    )


def _is_lead(row: dict[str, Any]) -> bool:
    meta = row.get("meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    return (
        isinstance(row.get("id"), str)
        and isinstance(row.get("text"), str)
        and isinstance(title, str)
        and bool(title.strip())
    )


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Questions in the `closed-book-qa` asset's format: id, source, question, answers."""
    return _read_rows(
        path,
        _is_question,
        "id, source, question (strings) and answers (a list of strings), as "
        "`instructpt assets get closed-book-qa` writes",
    )


def read_leads(path: Path) -> list[dict[str, Any]]:
    """Documents with a title (`wiki-leads`'s format): id, text, meta.title."""
    return _read_rows(
        path,
        _is_lead,
        "a Document with id, text and meta.title, as `instructpt assets get wiki-leads` writes",
    )


# ------------------------------------------------------------------ selection


def _is_common_noun(title: str, text: str) -> bool:
    """Whether the lead writes its own title in lower case ("A planet is ..."): a concept,
    not a named thing ("Madrid", "Star Wars" are always capitalised)."""
    lower = title.lower()
    return lower == title or re.search(rf"(?<!\w){re.escape(lower)}(?!\w)", text) is not None


def _shares(keys: set[str], texts: list[str]) -> dict[str, float]:
    """The share of `texts` (normalised) in which each key occurs as a word sequence."""
    lengths = sorted({len(k.split()) for k in keys})
    counts: Counter[str] = Counter()
    for text in texts:
        tokens = text.split()
        counts.update(
            {
                gram
                for n in lengths
                for i in range(len(tokens) - n + 1)
                if (gram := " ".join(tokens[i : i + n])) in keys
            }
        )
    return {k: counts[k] / max(1, len(texts)) for k in keys}


def title_index(
    leads: list[dict[str, Any]], lead_text: list[str], max_share: float = 0.005
) -> tuple[dict[str, list[int]], Counter[str]]:
    """Subject key -> indices of the leads it names, and how many titles each check refused.

    A key is the title without a trailing "(...)", normalised; several leads can
    share one ("Mercury (planet)", "Mercury (element)"). Refused (step 4 of the rule):
    keys shorter than MIN_TITLE_CHARS, keys of stopwords only, and common nouns that
    occur in more than `max_share` of all leads ("Name", "System", "Planet").
    """
    index: dict[str, list[int]] = defaultdict(list)
    common: set[str] = set()
    refused: Counter[str] = Counter(
        dict.fromkeys(("too_short", "stopwords_only", "too_general"), 0)
    )
    for i, lead in enumerate(leads):
        title = _DISAMBIGUATION.sub("", lead["meta"]["title"]).strip()
        key = normalise(title)
        if len(key) < MIN_TITLE_CHARS:
            refused["too_short"] += 1
        elif set(key.split()) <= STOPWORDS:
            refused["stopwords_only"] += 1
        else:
            index[key].append(i)
            if _is_common_noun(title, lead["text"]):
                common.add(key)
    for key, share in _shares(common, lead_text).items():
        if share > max_share:
            refused["too_general"] += len(index.pop(key))
    refused["subject_titles"] = sum(len(v) for v in index.values())
    return dict(index), refused


def subjects(question: str, index: dict[str, list[int]]) -> list[str]:
    """Titles occurring in the normalised question, overlapped ones kept only when longest.

    Returned longest first (then alphabetically), so the first is the main subject.
    """
    tokens = question.split()
    spans = []
    for start in range(len(tokens)):
        for end in range(start + 1, min(len(tokens), start + MAX_TITLE_WORDS) + 1):
            key = " ".join(tokens[start:end])
            if key in index:
                spans.append((start, end, key))
    maximal = {
        key
        for s, e, key in spans
        if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2, _ in spans)
    }
    return sorted(maximal, key=lambda k: (-len(k), k))


def matching_answers(row: dict[str, Any]) -> list[str]:
    """The normalised answers the rule looks for (see the module docstring, step 2)."""
    answers = row["answers"][:1] if row["source"] in CANONICAL_FIRST else row["answers"]
    return [a for a in dict.fromkeys(map(normalise, answers)) if len(a) >= MIN_ANSWER_CHARS]


@dataclass
class Candidate:
    """A question that passed the selection rule, with the leads that state its answer."""

    row: dict[str, Any]
    support: list[int]  # lead indices, main subject first
    title: str


def select(
    questions: list[dict[str, Any]],
    leads: list[dict[str, Any]],
    max_subject_share: float = 0.005,
) -> tuple[list[Candidate], dict[str, Counter[str]], Counter[str]]:
    """Apply steps 1-5 of the rule.

    Returns the kept questions, the questions each rule removed per source, and
    the titles refused as subjects per reason.
    """
    lead_text = [normalise(lead["text"]) for lead in leads]
    index, titles = title_index(leads, lead_text, max_subject_share)
    removed: dict[str, Counter[str]] = {rule: Counter() for rule in RULES}
    kept: list[Candidate] = []
    seen: set[str] = set()
    for row in questions:
        question = normalise(row["question"])
        answers = matching_answers(row)
        rule, support = None, []
        if question in seen:
            rule = "duplicate_question"
        elif not answers:
            rule = "answer_too_short"
        elif any(_contains(question, a) for a in answers):
            rule = "answer_in_question"
        seen.add(question)
        if rule is None:
            found = subjects(question, index)
            support = [
                i
                for key in found
                for i in index[key]
                if any(_contains(lead_text[i], a) for a in answers)
            ]
            rule = "no_subject" if not found else None if support else "answer_not_in_subject_lead"
        if rule is not None:
            removed[rule][row["source"]] += 1
            continue
        kept.append(Candidate(row, support, leads[support[0]]["meta"]["title"]))
    return kept, removed, titles


# ------------------------------------------------------------------ corpus


def contaminated_leads(
    leads: list[dict[str, Any]], questions: list[str], ngram: int, min_ngram: int
) -> tuple[set[int], Counter[str]]:
    """Indices of leads sharing a word `ngram`-gram (or a whole short question) with a question."""
    hasher = WordHasher()
    index = EvalIndex.build(questions, ngram, min_ngram, hasher)
    dirty = {i for i, lead in enumerate(leads) if index.contaminated(hasher(words(lead["text"])))}
    return dirty, index.stats


def heldout_split(ids: list[str], heldout_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """(tune ids, heldout ids): the first `heldout_fraction` by a seeded hash of each id."""
    rank = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    n_heldout = round(len(ids) * heldout_fraction)
    return set(rank[n_heldout:]), set(rank[:n_heldout])


# ------------------------------------------------------------------ output


def _item(c: Candidate, leads: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": c.row["id"],
        "source": c.row["source"],
        "question": c.row["question"],
        "answers": c.row["answers"],
        "title": c.title,
        "support": [leads[i]["id"] for i in c.support],
    }


def _task_yaml(
    task: str,
    files: dict[str, Path],
    fewshot_split: str,
    num_fewshot: int,
    header: str,
    what: str,
) -> bytes:
    config: dict[str, Any] = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {k: str(v) for k, v in files.items()}},
        "test_split": "test",
        "fewshot_split": fewshot_split,
        # the task's own default: zero-shot, a chat model answers in sentences, not a span
        "num_fewshot": num_fewshot,
        "doc_to_text": PROMPT,
        **_GEN_BODY,
        # every alias: lm-eval scores a list target as "matches any"
        "doc_to_target": "answers",
        "metadata": {"version": GEN_VERSION},
    }
    text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    return f"{header}# {what}\n{text}".encode()


@dataclass(frozen=True)
class WikiProbe:
    """What `build_wiki_probe` wrote: the folder, the corpus, the task names, the counts."""

    out_dir: Path
    corpus: Path
    tasks: tuple[str, ...]
    counts: dict[str, Any]


def build_wiki_probe(
    questions: Path,
    leads: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    num_distractors: int = 1000,
    heldout_fraction: float = 0.5,
    ngram: int = 13,
    min_ngram: int = 6,
    max_subject_share: float = MAX_SUBJECT_SHARE,
    num_fewshot: int = NUM_FEWSHOT,
) -> WikiProbe:
    """Select questions, build the corpus, split and write the probe (see the module docstring).

    `questions`: jsonl as the `closed-book-qa` asset writes; `leads`: Documents
    with `meta.title` (the `wiki-leads` asset). Every file is written atomically,
    the task YAMLs and probe.json last.
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise InputError(f"heldout_fraction must be between 0 and 1, not {heldout_fraction}")
    if num_fewshot < 0:
        raise InputError(f"num_fewshot must be >= 0, not {num_fewshot}")
    if num_distractors < 0:
        raise InputError(f"num_distractors must be >= 0, not {num_distractors}")
    questions, leads, out_dir = Path(questions).resolve(), Path(leads).resolve(), Path(out_dir)
    out_dir = out_dir.resolve()
    rows, docs = read_questions(questions), read_leads(leads)

    kept, removed, titles = select(rows, docs, max_subject_share)
    dirty, stats = contaminated_leads(docs, [c.row["question"] for c in kept], ngram, min_ngram)
    dirty_support = {i for c in kept for i in c.support} & dirty
    clean = []
    for c in kept:
        c.support = [i for i in c.support if i not in dirty]
        if c.support:
            c.title = docs[c.support[0]]["meta"]["title"]
            clean.append(c)
        else:
            removed["support_decontaminated"][c.row["source"]] += 1
    if len(clean) < 2:
        raise InputError(
            f"only {len(clean)} of {len(rows)} questions in {questions} have their answer in a "
            f"lead of {leads} about their subject: a probe needs at least 2"
        )

    support = sorted({i for c in clean for i in c.support})
    taken = dirty | set(support)
    pool = [i for i in range(len(docs)) if i not in taken]
    rng = random.Random(f"{seed}:distractors")  # str seeds are stable across processes
    distractors = sorted(rng.sample(pool, min(num_distractors, len(pool))))
    role = {**{i: "support" for i in support}, **{i: "distractor" for i in distractors}}
    corpus = [{**docs[i], "meta": {**docs[i]["meta"], "probe_role": role[i]}} for i in sorted(role)]

    tune_ids, heldout_ids = heldout_split([c.row["id"] for c in clean], heldout_fraction, seed)
    if not tune_ids or not heldout_ids:
        raise InputError(
            f"heldout_fraction {heldout_fraction} of {len(clean)} questions leaves a slice empty"
        )
    slices = {
        TUNE_TASK: [_item(c, docs) for c in clean if c.row["id"] in tune_ids],
        HELDOUT_TASK: [_item(c, docs) for c in clean if c.row["id"] in heldout_ids],
    }

    read = Counter(r["source"] for r in rows)
    counts = {
        "settings": {
            "seed": seed,
            "num_distractors": num_distractors,
            "heldout_fraction": heldout_fraction,
            "ngram": ngram,
            "min_ngram": min_ngram,
            "min_title_chars": MIN_TITLE_CHARS,
            "min_answer_chars": MIN_ANSWER_CHARS,
            "max_subject_share": max_subject_share,
            "num_fewshot": num_fewshot,
        },
        "inputs": {"questions": str(questions), "leads": str(leads)},
        "titles": dict(sorted(titles.items())),
        "questions": {
            "read": dict(sorted(read.items())),
            "removed": {rule: dict(sorted(removed[rule].items())) for rule in RULES},
            "selected": dict(sorted(Counter(c.row["source"] for c in clean).items())),
        },
        "decontamination": {
            "leads_read": len(docs),
            "leads_contaminated": len(dirty),
            "support_leads_contaminated": len(dirty_support),
            "questions_checked_by_ngram": stats["eval_docs"]
            - stats["eval_docs_matched_whole"]
            - stats["eval_docs_too_short"],
            "questions_checked_whole": stats["eval_docs_matched_whole"],
            "questions_unchecked_too_short": stats["eval_docs_too_short"],
        },
        "corpus": {
            "documents": len(corpus),
            "support": len(support),
            "distractors": len(distractors),
            "characters": sum(len(d["text"]) for d in corpus),
        },
        "splits": {TUNE_TASK: len(slices[TUNE_TASK]), HELDOUT_TASK: len(slices[HELDOUT_TASK])},
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus_file = out_dir / CORPUS_FILE
    atomic_write_bytes(corpus_file, _jsonl_bytes(corpus))
    files = {task: out_dir / f"{task}.jsonl" for task in slices}
    for task, items in slices.items():
        atomic_write_bytes(files[task], _jsonl_bytes(items))
    header = _HEADER.format(questions=questions, leads=leads)
    atomic_write_bytes(
        out_dir / f"{TUNE_TASK}.yaml",
        _task_yaml(
            TUNE_TASK,
            {"test": files[TUNE_TASK]},
            "test",  # the same split: lm-eval leaves the scored item out of its shots
            num_fewshot,
            header,
            "The tune slice: tuning may look at these. Few-shot examples: the same slice.",
        ),
    )
    atomic_write_bytes(
        out_dir / f"{HELDOUT_TASK}.yaml",
        _task_yaml(
            HELDOUT_TASK,
            {"test": files[HELDOUT_TASK], "train": files[TUNE_TASK]},
            "train",
            num_fewshot,
            header,
            "The held-out slice: score it once, never tune on it. Few-shot examples: tune.",
        ),
    )
    record = json.dumps(counts, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(out_dir / RECORD_FILE, record.encode("utf-8"))
    return WikiProbe(out_dir, corpus_file, (TUNE_TASK, HELDOUT_TASK), counts)
