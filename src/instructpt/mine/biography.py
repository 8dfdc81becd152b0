"""The `biography` family: attribute questions about the one person a text is about.

Encyclopedia biographies name their subject once and then say "she", "he" or
the surname. The `fact` family only takes sentences that open with an explicit
name, so it misses most of a biography; this family resolves those references
to the text's *main subject* (the full name the first sentence opens with), the
way a reader of a one-person article does, and asks about every attribute a
biography usually states: birth place, date and year, studies (university and
field), graduation year, employer and the year they joined, residence, hobby,
spouse and sibling.

Why only the main subject: in a text that is about one person, "she" and the
bare surname refer to that person; in any other text a wrong guess would teach
a wrong fact, so a text whose first sentence does not open with a full name
(two or more capitalised words followed by a verb) yields nothing here. A
sentence that names a second full person is used only for relations (spouse,
sibling), where that other name is the answer.

Extraction is by trigger phrases and value shapes, not by one regex per
sentence form: a sentence about studies ("studied", "degree", "graduate",
"enrolled", ...) gives its university (a proper name ending in University,
College, Academy, Institute or School) and its field (the word after "studied",
"read", "degree in", ...). Answers are copied from the sentence verbatim.
"""

from __future__ import annotations

import random
import re
from typing import Any

Candidate = dict[str, Any]

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = rf"(?:\d{{1,2}} (?:{_MONTHS}) \d{{3,4}}|(?:{_MONTHS}) \d{{1,2}}, \d{{3,4}})"
_WORD = r"[A-Z][a-z'’-]+"
#: A proper name of one to four capitalised words ("Fytre Airways", "Pimgate").
_PROPER = rf"(?!(?:{_MONTHS}|The|A|An|In|At|On|He|She|His|Her|Since|Born|Home|After)\b){_WORD}"
_PLACE = rf"{_PROPER}(?: {_PROPER}){{0,3}}"
_ORG = _PLACE

#: The main subject: a full name opening the text, then a verb.
_OPENING = re.compile(
    rf"^(?P<name>{_PROPER}(?: {_PROPER}){{1,3}}) (?:is|was|works|worked|earns|has|had|practises|"
    r"practices|serves|served|became|remains)\b"
)
_PRONOUN = re.compile(r"\b(?:[Hh]e|[Ss]he|[Hh]is|[Hh]er)\b")
_FULL_NAME = re.compile(rf"\b{_PROPER}(?: {_PROPER}){{1,3}}\b")
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_DATE_RE = re.compile(_DATE)

_UNIVERSITY = re.compile(
    rf"\b(?:University of {_PROPER}|{_PROPER}(?: {_PROPER}){{0,2}} "
    r"(?:University|College|Academy|Institute|Polytechnic|School)"
    rf"(?: of {_PROPER}(?: {_PROPER})*)?)\b"
)
_STUDY_TRIGGER = re.compile(
    r"\b(?:stud(?:y|ied|ies|ying)|degree|graduat\w*|enrolled|attended|educated|majored|"
    r"read|trained in|specialised|specialized|student)\b"
)
_FIELD = re.compile(
    r"\b(?:studied at [^.;]*? was|study was|studied|study|studying|read|majored in|trained in|"
    r"specialised in|specialized in|degree in|studies in|graduate in|with)"
    r" (?P<v>[a-z]+)\b(?!\w)(?P<after>[^.;]{0,40})"
)
_NOT_FIELD = frozenset(
    {"a", "an", "the", "his", "her", "their", "at", "in", "from", "there", "while", "as"}
    | {"and", "for", "of", "to", "with", "university"}
)
_GRADUATION_TRIGGER = re.compile(
    r"\b(?:graduat\w*|degree|diploma|studies|student days|final examinations|"
    r"completed university|class of)\b"
)
_EMPLOYER = re.compile(
    rf"(?:\b(?:works for|works at|work for|worked for|worked at|employed by|employed at|"
    rf"employed as [^.;]*? at|staff of|payroll of|position at|job at|staff at|living at|"
    rf"joined|hired by|career at|began at|started at|began working for|started working at|"
    rf"signed on with|post at|service of|came to|moved to|part of|been with|employer is|"
    rf"works for is|as an? [a-z ]+ for|as an? [a-z ]+ at|is an? [a-z ]+ at) "
    rf"(?P<v>{_ORG})|^(?P<w>{_ORG})(?:, [^,]+,)? (?:employs|hired|took|is the employer of)\b"
    rf"|^Employed by (?P<x>{_ORG}))"
)
_JOIN_TRIGGER = re.compile(
    r"\b(?:joined|since|hired|began|started|took up|signed on|first came|service of|"
    r"career at|moved to|took [A-Z][^.;]* on|part of|held a post|employed at)\b"
)
_RESIDENCE = re.compile(
    rf"\b(?:lives in(?: a house in)?(?: the [A-Z]\w+ city of)?|resides in|home is in|home in|"
    rf"settled in|dwells in|resident of|where [^.;]*? lives is|Home for [^.;]*? is|"
    rf"home of [^.;]*? is in|has made) (?P<v>{_PLACE})|^(?P<w>{_PLACE}), in [A-Z]\w+, is home to"
)
_HOBBY = re.compile(
    r"\b(?:enjoys most is|enjoys|pastime is|devoted to|interest in|weekends on|turns to|"
    r"passionate about|hobby is|relaxes with|lists|love of|pursues|took up|time for|practised|"
    r"enthusiast of|hobby:|hobby of [^.;]*? is) (?P<v>[a-z]+)\b"
)
_HOBBY_TRIGGER = re.compile(
    r"\b(?:hobby|pastime|free time|spare time|weekends|leisure|not working|outside work|"
    r"passionate|enthusiast|interest in|relaxes|evenings|away from)\b",
    re.IGNORECASE,
)
_BIRTH_TRIGGER = re.compile(
    r"\b(?:born|birth\w*|native of|hails from|came into the world|entered the world|"
    r"saw daylight)\b",
    re.IGNORECASE,
)
_BIRTH_CITY_OF = re.compile(rf"\bcity of (?P<a>{_PLACE})")
_BIRTH_PLACE = re.compile(
    rf"(?:^(?P<b>{_PLACE}), a city in\b|"
    rf"\b(?:[Bb]orn in|native of|hails from|birthplace is|place is|"
    rf"birthplace of [A-Z][^.;]*? is|(?:took place|world|daylight|born) on {_DATE},? in|"
    rf"[Bb]orn on {_DATE} in|world in) (?P<c>{_PLACE}))"
)
_SPOUSE_TRIGGER = re.compile(r"\b(?:marri\w*|spouse|wed|wedded|tied the knot)\b")
_SIBLING_TRIGGER = re.compile(r"\b(?:sibling|same parents)\b")


def main_subject(sentences: list[str]) -> str | None:
    """The full name the text's first sentence opens with, or None."""
    if not sentences:
        return None
    m = _OPENING.match(sentences[0])
    return m["name"] if m else None


def _about_main(sentence: str, main: str, surname: str) -> bool:
    """Whether the sentence refers to the main subject (name, surname or pronoun)."""
    return (
        main in sentence
        or re.search(rf"\b{re.escape(surname)}\b", sentence) is not None
        or (_PRONOUN.search(sentence) is not None)
    )


def _other_people(sentence: str, main: str, places: set[str]) -> list[str]:
    """Full names in the sentence that are not the main subject, orgs or places."""
    out = []
    for m in _FULL_NAME.finditer(sentence):
        name = m.group(0)
        if name == main or main in name or name in places:
            continue
        if _UNIVERSITY.fullmatch(name):
            continue
        out.append(name)
    return out


def biography(doc_id: str, text: str, sentences: list[str], rng: random.Random) -> list[Candidate]:
    """Attribute pairs about the main subject of a one-person text (see module doc)."""
    main = main_subject(sentences)
    if main is None:
        return []
    surname = main.split()[-1]
    found: dict[str, tuple[str, str]] = {}  # attribute -> (question, answer); first wins

    def add(attribute: str, question: str, answer: str) -> None:
        answer = answer.strip()
        if answer and attribute not in found:
            found[attribute] = (question, answer)

    for s in sentences:
        if len(s) > 600 or not _about_main(s, main, surname):
            continue
        others = [n for n in _FULL_NAME.findall(s) if n != main and main not in n]
        # A second named person who is not an org in this sentence makes the
        # subject ambiguous for attributes; relations use that name as the answer.
        if _SPOUSE_TRIGGER.search(s) or _SIBLING_TRIGGER.search(s):
            people = [
                n for n in others if not _UNIVERSITY.fullmatch(n) and n.split()[-1] != n.split()[0]
            ]
            if len(people) == 1:
                if _SPOUSE_TRIGGER.search(s):
                    add("spouse", f"Who is {main}'s spouse?", people[0])
                else:
                    add("sibling", f"Who is {main}'s sibling?", people[0])
            continue
        if "mentor" in s or "mentee" in s:
            continue  # direction (who mentored whom) is easy to get wrong: skipped
        if _BIRTH_TRIGGER.search(s):
            d = _DATE_RE.search(s)
            if d:
                add("birth_date", f"When was {main} born?", d.group(0))
                add("birth_year", f"In which year was {main} born?", d.group(0)[-4:])
            # "born in Brethorra, in the city of Puthorpe": the city, not the country.
            p = _BIRTH_CITY_OF.search(s) or _BIRTH_PLACE.search(s)
            if p:
                place = p.groupdict().get("a") or p.groupdict().get("b") or p["c"]
                add("birth_city", f"Where was {main} born?", place)
            continue
        if _STUDY_TRIGGER.search(s):
            u = _UNIVERSITY.search(s)
            if u:
                add("university", f"Which university did {main} attend?", u.group(0))
            for f in _FIELD.finditer(s):
                word = f["v"]
                if word in _NOT_FIELD:
                    continue
                if f.group(0).startswith("with") and " as " not in f["after"][:4]:
                    continue  # "with physics as her subject" only
                add("field", f"What did {main} study?", word)
                break
            if _GRADUATION_TRIGGER.search(s) and not _BIRTH_TRIGGER.search(s):
                y = _YEAR.search(s)
                if y:
                    add("graduation_year", f"When did {main} graduate?", y.group(1))
            continue
        if _GRADUATION_TRIGGER.search(s):
            y = _YEAR.search(s)
            if y:
                add("graduation_year", f"When did {main} graduate?", y.group(1))
            continue
        e = _EMPLOYER.search(s)
        if e:
            org = e["v"] or e["w"] or e["x"]
            if org and org != main and surname not in org.split():
                add("employer", f"Which company does {main} work for?", org)
                y = _YEAR.search(s)
                if y and _JOIN_TRIGGER.search(s):
                    add("join_year", f"When did {main} join {org}?", y.group(1))
            continue
        r = _RESIDENCE.search(s)
        if r:
            place = r["v"] or r["w"]
            if place and surname not in place.split():
                add("residence_city", f"Where does {main} live?", place)
            continue
        if _HOBBY_TRIGGER.search(s) or " hobby" in s:
            h = _HOBBY.search(s)
            if h and h["v"] not in _NOT_FIELD:
                add("hobby", f"What is {main}'s hobby?", h["v"])
    return [
        {"question": q, "answer": a, "family": "biography", "extractive": True}
        for q, a in found.values()
    ]
