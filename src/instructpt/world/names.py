"""Fictional names from syllables: unique within a world, never a real place.

Names are built from an inventory of onsets, vowels and codas plus a suffix
per kind of entity ("-moor" for a city, "-avia" for a country), which keeps
them pronounceable (so a byte-level tokenizer sees recurring pieces) and
makes collisions with real places unlikely; a small blocklist catches the
few real names these patterns can still produce. One `NameMaker` serves a
whole world, so no two entities share a name and every answer in the ground
truth points at exactly one entity.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_ONSETS: tuple[str, ...] = (
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p",
    "r", "s", "t", "th", "tr", "v", "z", "",
)  # fmt: skip
_VOWELS: tuple[str, ...] = ("a", "e", "i", "o", "u", "ae", "ei", "ou", "y", "ai")
_CODAS: tuple[str, ...] = ("", "", "n", "r", "l", "s", "th", "m", "rn", "ld", "st", "x")

_SURNAME_ENDINGS: tuple[str, ...] = (
    "ren", "vick", "dal", "mont", "sby", "holm", "ric", "ane", "wen", "dor", "ley", "rask",
)  # fmt: skip
_CITY_SUFFIXES: tuple[str, ...] = (
    "moor", "holt", "wick", "dale", "stead", "haven", "mere", "brook", "vale", "gate",
    "thorpe", "crest",
)  # fmt: skip
_COUNTRY_SUFFIXES: tuple[str, ...] = ("avia", "orra", "estan", "ovia", "ara", "enne", "ith")
_LANGUAGE_SUFFIXES: tuple[str, ...] = ("ic", "ish", "ese", "ian")
#: No "University of X" pattern: prose would need "the" before it ("studied at
#: the University of X"), and the answer must match the text verbatim.
_UNIVERSITY_PATTERNS: tuple[str, ...] = (
    "{root} University",
    "{root} Institute of Technology",
    "{root} College",
    "{root} Academy",
)

#: Real places the patterns above could produce; checked case-insensitively.
_BLOCKLIST: frozenset[str] = frozenset(
    {"paris", "lima", "rome", "oslo", "bern", "riga", "kiev", "doha", "male", "nice",
     "bath", "york", "hull", "derby", "troy", "sparta", "moravia", "batavia", "samara",
     "ankara", "tiara", "tara", "angola", "kenya", "nepal", "peru", "chad", "mali"}
)  # fmt: skip


class NameMaker:
    """Draws names for one world; remembers every name it gave out so each is unique."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def _syllable(self, coda: bool = True, initial: bool = True) -> str:
        rng = self._rng
        onset = rng.choice(_ONSETS)
        while not onset and not initial:  # "Zaaeld", "Thuou": no vowel-vowel seams
            onset = rng.choice(_ONSETS)
        vowel = rng.choice(_VOWELS)
        return onset + vowel + (rng.choice(_CODAS) if coda else "")

    def _root(self, num_syllables: int) -> str:
        parts = [
            self._syllable(coda=i == num_syllables - 1, initial=i == 0)
            for i in range(num_syllables)
        ]
        return "".join(parts).capitalize()

    def _unique(self, make: Callable[[], str]) -> str:
        # A world of a few thousand names uses a tiny share of the space, so a
        # handful of redraws is plenty; the bound turns a bug into an error.
        for _ in range(10_000):
            name = make()
            key = name.lower()
            if key not in self._used and key not in _BLOCKLIST and len(name) >= 4:
                self._used.add(key)
                return name
        raise RuntimeError("name space exhausted; lower the world's entity counts")

    # People's names are kept short (two syllables, a one-syllable root plus an
    # ending): a tiny model must learn hundreds of them from a few mentions each.
    def first_name(self) -> str:
        """A given name; not registered, since many people may share one."""
        return self._root(2)

    def surname(self) -> str:
        """A family name; not registered, since siblings share one."""
        return self._root(self._rng.choice((1, 1, 1, 2))) + self._rng.choice(_SURNAME_ENDINGS)

    def person(self, surname: str | None = None) -> tuple[str, str]:
        """A unique full name as (first, last); `surname` fixes the family name."""
        chosen: list[tuple[str, str]] = []

        def make() -> str:
            first = self.first_name()
            last = surname if surname is not None else self.surname()
            chosen.append((first, last))
            return f"{first} {last}"

        self._unique(make)
        return chosen[-1]

    def country(self) -> str:
        return self._unique(
            lambda: self._root(self._rng.choice((1, 2))) + self._rng.choice(_COUNTRY_SUFFIXES)
        )

    def language(self) -> str:
        return self._unique(
            lambda: self._root(self._rng.choice((1, 2))) + self._rng.choice(_LANGUAGE_SUFFIXES)
        )

    def city(self) -> str:
        return self._unique(
            lambda: self._root(self._rng.choice((1, 2))) + self._rng.choice(_CITY_SUFFIXES)
        )

    def university(self) -> str:
        def make() -> str:
            pattern = self._rng.choice(_UNIVERSITY_PATTERNS)
            return pattern.format(root=self._root(self._rng.choice((2, 3))))

        return self._unique(make)

    def company(self, suffixes: tuple[str, ...]) -> str:
        def make() -> str:
            return f"{self._root(self._rng.choice((2, 3)))} {self._rng.choice(suffixes)}"

        return self._unique(make)
