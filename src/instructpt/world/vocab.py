"""Closed vocabularies of the demo world: industries, jobs, fields, hobbies, months.

Kept small and fixed on purpose: a 1-5M parameter model trained on a few
million tokens can only learn facts whose values it sees many times, and
multiple-choice distractors must come from the same closed set as the answer
("other hobbies for a hobby") to be plausible. Every value here is lower case
and is never placed at the start of a sentence by a template, so the value in
the text matches the ground-truth answer verbatim.
"""

from __future__ import annotations

#: industry -> (company name suffixes, occupations people hold there).
#: An employee's occupation is drawn from the employer's industry, so the
#: texts stay plausible ("a pilot at an aviation company").
INDUSTRIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "software": (("Systems", "Software", "Digital"), ("programmer", "data analyst", "tester")),
    "mining": (("Mining", "Minerals", "Quarries"), ("geologist", "mining engineer", "surveyor")),
    "pharmaceutical": (
        ("Pharma", "Laboratories", "Remedies"),
        ("chemist", "pharmacologist", "lab technician"),
    ),
    "publishing": (("Press", "Books", "Publishing"), ("editor", "translator", "illustrator")),
    "banking": (("Bank", "Savings", "Capital"), ("accountant", "economist", "loan officer")),
    "aviation": (("Aero", "Airways", "Aviation"), ("pilot", "aircraft engineer", "navigator")),
    "shipbuilding": (("Shipyards", "Marine", "Docks"), ("naval architect", "welder", "rigger")),
    "textile": (("Textiles", "Mills", "Weavers"), ("weaver", "dyer", "pattern cutter")),
    "food": (("Foods", "Provisions", "Bakeries"), ("baker", "food scientist", "quality inspector")),
    "energy": (
        ("Power", "Energy", "Grid"),
        ("electrician", "electrical engineer", "plant operator"),
    ),
    "insurance": (
        ("Insurance", "Assurance", "Mutual"),
        ("actuary", "underwriter", "claims adjuster"),
    ),
    "furniture": (
        ("Furniture", "Joinery", "Woodworks"),
        ("carpenter", "upholsterer", "furniture maker"),
    ),
}

FIELDS: tuple[str, ...] = (
    "physics",
    "chemistry",
    "mathematics",
    "history",
    "economics",
    "linguistics",
    "botany",
    "architecture",
    "medicine",
    "law",
    "philosophy",
    "geology",
    "music",
    "astronomy",
    "agriculture",
    "biology",
    "literature",
    "sociology",
    "statistics",
    "zoology",
    "geography",
    "engineering",
)

HOBBIES: tuple[str, ...] = (
    "chess",
    "sailing",
    "beekeeping",
    "pottery",
    "rowing",
    "birdwatching",
    "gardening",
    "painting",
    "fencing",
    "hiking",
    "cycling",
    "woodcarving",
    "calligraphy",
    "archery",
    "baking",
    "knitting",
    "photography",
    "stargazing",
    "fishing",
    "climbing",
    "origami",
    "swimming",
    "embroidery",
    "kayaking",
    "bookbinding",
    "falconry",
    "juggling",
    "skating",
)

MONTHS: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

#: Days per month; February has 28 so every generated date exists in every year.
MONTH_DAYS: tuple[int, ...] = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def with_article(noun: str) -> str:
    """'engineer' -> 'an engineer'; the vowel rule is enough for this vocabulary."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def format_date(day: int, month: int, year: int) -> str:
    """The one date format of the world ("3 May 1961"): answers must match texts verbatim."""
    return f"{day} {MONTHS[month - 1]} {year}"
