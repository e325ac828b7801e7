"""Lexicon sentiment that needs no training data: the scorer interface and its VADER backend."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from text_analytics.tokens import WordLookup, map_unique, to_text_list

VADER_PACKAGE = "vadersentiment>=3.3.2"
_WORD_RE = re.compile(r"[A-Za-z]{5,}")
# Everyday words one letter swap away from a lexicon word ("tried" -> "tired"): never respelled.
COMMON_WORDS = frozenset(
    {"tried", "trial", "quite", "united", "sacred", "angle", "casual", "causal", "diary", "dairy"}
)


@runtime_checkable
class LexiconScorer(Protocol):
    """Anything that gives each text a polarity in [-1, 1] without being trained."""

    name: str

    def compound(self, texts: Sequence[str]) -> np.ndarray:
        """Polarity per text: -1 most negative, 0 neutral, +1 most positive."""
        ...


def _load_vader() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as err:
        raise ImportError(
            "Lexicon sentiment needs the 'vaderSentiment' module from the PyPI package "
            f"'{VADER_PACKAGE}' (it ships its lexicon, no download). Add it to the project "
            "dependencies, or run with `uv run --with vadersentiment ...`."
        ) from err
    return SentimentIntensityAnalyzer()


class VaderLexicon:
    """VADER's compound polarity, with misspelled sentiment words respelled first.

    VADER reads "terible" as an unknown word; a token of five or more letters that is not in
    its lexicon but is one typo (or a doubled letter) away from exactly one lexicon word is
    replaced by that word first ("terible" -> "terrible", "dissapointed" -> "disappointed").
    ``known_words`` are never respelled. Scores are cached per distinct text: chats repeat
    "thanks" and "ok" endlessly.
    """

    name = "vader"

    def __init__(
        self,
        correct_spelling: bool = True,
        known_words: Iterable[str] = COMMON_WORDS,
        cache_size: int = 500_000,
    ) -> None:
        self.correct_spelling = correct_spelling
        self.known_words = frozenset(word.lower() for word in known_words)
        self.cache_size = cache_size
        self._setup()

    def _setup(self) -> None:
        self._analyzer = _load_vader()
        self._lexicon: dict[str, float] = self._analyzer.lexicon
        self._lookup = WordLookup(
            {word: word for word in self._lexicon if word.isalpha()}, typos="swap"
        )
        self._cache: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {
            "correct_spelling": self.correct_spelling,
            "known_words": self.known_words,
            "cache_size": self.cache_size,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def respell(self, text: str) -> str:
        """The text with misspelled lexicon words replaced by the lexicon's spelling."""
        return _WORD_RE.sub(self._respell_word, text)

    def _respell_word(self, match: re.Match[str]) -> str:
        word = match.group()
        lower = word.lower()
        if lower in self._lexicon or lower in self.known_words:
            return word
        found = self._lookup.lookup(lower)
        if found is None:
            return word
        return found.upper() if word.isupper() else found

    def _score(self, texts: list[str]) -> list[float]:
        out = []
        cache = self._cache
        for text in texts:
            value = cache.get(text)
            if value is None:
                prepared = self.respell(text) if self.correct_spelling else text
                value = float(self._analyzer.polarity_scores(prepared)["compound"])
                if len(cache) >= self.cache_size:
                    cache.clear()
                cache[text] = value
            out.append(value)
        return out

    def compound(self, texts: Sequence[str]) -> np.ndarray:
        """VADER compound polarity per text, in [-1, 1]."""
        return np.asarray(map_unique(to_text_list(texts), self._score), dtype=float)
