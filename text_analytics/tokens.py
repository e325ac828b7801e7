"""Words of customer text: tokens, negation scope, typo-tolerant word lookup, per-unique mapping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# A negation reaches to the end of its clause: punctuation or a contrast word closes it.
_CLAUSE_RE = re.compile(r"[.,;:!?()\[\]\n]+|\b(?:but|however|although|though|yet)\b")
NEGATORS = frozenset(
    {
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "neither",
        "nor",
        "without",
        "cannot",
        "cant",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "wasnt",
        "arent",
        "werent",
        "wont",
        "wouldnt",
        "couldnt",
        "shouldnt",
        "hasnt",
        "havent",
        "hadnt",
    }
)
NEGATED_PREFIX = "neg_"
_REPEATS = re.compile(r"(.)\1+")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; contractions such as "don't" stay one token."""
    return _TOKEN_RE.findall(text.lower())


def split_clauses(text: str) -> list[list[str]]:
    """Tokens per clause; punctuation and contrast words ("but", "however") end a clause."""
    clauses = (_TOKEN_RE.findall(clause) for clause in _CLAUSE_RE.split(text.lower()) if clause)
    return [tokens for tokens in clauses if tokens]


def is_negator(token: str) -> bool:
    """Whether a token negates what follows it ("not", "never", "don't", ...)."""
    return token in NEGATORS or token.endswith("n't")


def mark_negation(text: str) -> str:
    """Tokens joined by spaces, those inside a negation's scope prefixed with ``neg_``.

    "not happy with the support, love the app" -> "not neg_happy neg_with neg_the neg_support
    love the app": a bag of words then tells "not happy" from "happy".
    """
    out: list[str] = []
    for clause in split_clauses(text):
        negated = False
        for token in clause:
            if is_negator(token):
                out.append(token)
                negated = True
            else:
                out.append(NEGATED_PREFIX + token if negated else token)
    return " ".join(out)


def join_tokens(text: str) -> str:
    """Tokens joined by single spaces (punctuation and case dropped)."""
    return " ".join(tokenize(text))


def collapse_repeats(word: str) -> str:
    """A word with runs of one letter collapsed: "dissapointed" and "disappointed" agree."""
    return _REPEATS.sub(r"\1", word)


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _swaps(word: str) -> set[str]:
    """The word with two adjacent letters swapped, anywhere after the first letter."""
    return {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(1, len(word) - 1)}


def osa_distance(a: str, b: str) -> int:
    """Edit distance counting insertions, deletions, substitutions and adjacent swaps."""
    if a == b:
        return 0
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def inflect(word: str) -> set[str]:
    """Regular English inflections of a word: crash -> crashes, crashed, crashing, ..."""
    forms = {word}
    if not word.isalpha() or len(word) < 3:
        return forms
    forms |= {word + "s", word + "es", word + "ed", word + "ing", word + "er", word + "ly"}
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing", word + "r"}
    if word.endswith("y") and word[-2] not in "aeiou":
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    vowels = "aeiou"
    # A short consonant-vowel-consonant ending doubles: bug -> buggy, get -> getting.
    short_cvc = word[-1] not in vowels + "wxy" and word[-2] in vowels and word[-3] not in vowels
    if len(word) <= 5 and short_cvc:
        double = word + word[-1]
        forms |= {double + "ing", double + "ed", double + "y", double + "er"}
    return forms


class WordLookup:
    """Finds which known word a token stands for, tolerating doubled letters and one typo.

    ``forms`` maps every accepted spelling (e.g. inflections) to the word it stands for. A
    token matches a form exactly, or with tolerance when both have at least
    ``min_fuzzy_length`` letters and share their first letter (first-letter typos are rare, and
    allowing them turns "billing" into "killing"):

    - their skeletons (runs of one letter collapsed) are equal: "dissapointed";
    - one adjacent swap apart: "servcie";
    - with ``typos="edit"``, one insertion, deletion or substitution apart, for forms of at
      least ``min_fuzzy_length + 1`` letters ("crashng"; "really" must not read as "reply").
      Meant for a small, targeted vocabulary such as theme seed terms; ``typos="swap"`` suits a
      large one such as a sentiment lexicon.

    A token equally close to two different words matches neither. Only ``fuzzy_forms``
    (default: all forms) are matched with tolerance. Answers are cached per token.
    """

    def __init__(
        self,
        forms: Mapping[str, str],
        min_fuzzy_length: int = 5,
        typos: Literal["edit", "swap"] = "edit",
        fuzzy_forms: Iterable[str] | None = None,
    ) -> None:
        self.min_fuzzy_length = min_fuzzy_length
        self.typos = typos
        self._exact = dict(forms)
        self._by_skeleton: dict[str, set[str]] = {}
        self._by_delete: dict[str, set[str]] = {}
        self._cache: dict[str, str | None] = {}
        fuzzy = self._exact if fuzzy_forms is None else set(fuzzy_forms) & self._exact.keys()
        for form in fuzzy:
            word = self._exact[form]
            if len(form) < min_fuzzy_length or not form.isalpha():
                continue
            key = collapse_repeats(form)
            self._by_skeleton.setdefault(key, set()).add(word)
            if typos == "edit" and len(form) > min_fuzzy_length:
                for deleted in {key} | _deletes(key):
                    self._by_delete.setdefault(deleted, set()).add(key)

    def lookup(self, token: str) -> str | None:
        """The known word a token stands for, or None."""
        found = self._cache.get(token, "\0")
        if found != "\0":
            return found
        found = self._find(token)
        if len(self._cache) > 1_000_000:  # bounded: an endless stream of new typos
            self._cache.clear()
        self._cache[token] = found
        return found

    def _unique(self, skeletons: Iterable[str]) -> str | None:
        words = {w for key in skeletons for w in self._by_skeleton.get(key, ())}
        return next(iter(words)) if len(words) == 1 else None

    def _find(self, token: str) -> str | None:
        word = self._exact.get(token)
        if word is not None:
            return word
        if len(token) < self.min_fuzzy_length or not token.isalpha():
            return None
        key = collapse_repeats(token)
        if key in self._by_skeleton:
            return self._unique([key])
        # Swaps of the token as written too: "traiinng" is "training" with "in" swapped.
        swaps = {collapse_repeats(swapped) for swapped in _swaps(token)} | _swaps(key)
        found = self._unique(swaps & self._by_skeleton.keys())
        if found is not None or self.typos == "swap":
            return found
        candidates: set[str] = set()
        for deleted in {key} | _deletes(key):
            candidates |= self._by_delete.get(deleted, set())
        close = [c for c in candidates if c[0] == key[0] and osa_distance(key, c) <= 1]
        return self._unique(close)


def map_unique(texts: Sequence[str] | pd.Series, func: Callable[[list[str]], Iterable]) -> list:
    """``func`` applied once per distinct text, its answers spread back to every row.

    Real chats repeat a lot ("thanks", "ok"), so work is done per distinct text only.
    """
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object).fillna(""), sort=False)
    answers = list(func(list(uniques)))
    if len(answers) != len(uniques):
        raise ValueError("func must return one answer per text")
    lookup = np.empty(len(answers), dtype=object)
    lookup[:] = answers
    return list(lookup[codes]) if len(codes) else []


def to_text_list(texts: Sequence[str] | pd.Series | np.ndarray) -> list[str]:
    """Texts as plain strings, missing values as ''."""
    series = pd.Series(texts, dtype=object)
    return series.where(series.notna(), "").astype(str).tolist()
