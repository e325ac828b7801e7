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


class _Lowered:
    """Words lower-cased on access: VADER's checks look at a few neighbours of one word, but
    lower-cased the whole text to do so, once per sentiment word (quadratic in its length)."""

    __slots__ = ("words",)

    def __init__(self, words: Sequence[str]) -> None:
        self.words = words

    def __getitem__(self, k: int) -> str:
        return str(self.words[k]).lower()

    def __len__(self) -> int:
        return len(self.words)


def _linear_vader() -> Any:
    """VADER 3.3.2's analyzer with its quadratic steps made linear in the text's length.

    ``_negation_check`` and ``_special_idioms_check`` lower-cased every word of the text for
    each sentiment word (a 1 MB message: 300+ s); here they read only the neighbours they
    look at, with the same results (VADER's wrap-around at the first words included).
    ``_but_check`` looked each score up with ``list.index`` and popped/inserted it: here each
    score before the first "but" is halved and each after it raised by half, as VADER
    intends (its ``index`` lookup could hit an earlier equal score instead). The emoji pass
    builds the text with one join instead of a concatenation per character.
    """
    from vaderSentiment import vaderSentiment as vs

    class LinearVader(vs.SentimentIntensityAnalyzer):
        def polarity_scores(self, text: str) -> dict:
            emojis = self.emojis
            parts: list[str] = []
            prev_space = True
            for ch in text:
                description = emojis.get(ch)
                if description is not None:
                    if not prev_space:
                        parts.append(" ")
                    parts.append(description)
                    prev_space = False
                else:
                    parts.append(ch)
                    prev_space = ch == " "
            text = "".join(parts).strip()
            sentitext = vs.SentiText(text)
            sentiments: list[float] = []
            words = sentitext.words_and_emoticons
            lowered = [w.lower() for w in words]  # once per text, not once per word
            for i, item in enumerate(words):
                if lowered[i] in vs.BOOSTER_DICT:
                    sentiments.append(0)
                    continue
                if i < len(words) - 1 and lowered[i] == "kind" and lowered[i + 1] == "of":
                    sentiments.append(0)
                    continue
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
            sentiments = self._but_check_lowered(lowered, sentiments)
            return self.score_valence(sentiments, text)

        @staticmethod
        def _negation_check(valence, words_and_emoticons, start_i, i):
            w = _Lowered(words_and_emoticons)
            if start_i == 0 and vs.negated([w[i - 1]]):
                valence = valence * vs.N_SCALAR
            if start_i == 1:
                if w[i - 2] == "never" and w[i - 1] in ("so", "this"):
                    valence = valence * 1.25
                elif w[i - 2] == "without" and w[i - 1] == "doubt":
                    pass
                elif vs.negated([w[i - 2]]):
                    valence = valence * vs.N_SCALAR
            if start_i == 2:
                if (w[i - 3] == "never" and w[i - 2] in ("so", "this")) or w[i - 1] in (
                    "so",
                    "this",
                ):
                    valence = valence * 1.25
                elif w[i - 3] == "without" and (w[i - 2] == "doubt" or w[i - 1] == "doubt"):
                    pass
                elif vs.negated([w[i - 3]]):
                    valence = valence * vs.N_SCALAR
            return valence

        @staticmethod
        def _special_idioms_check(valence, words_and_emoticons, i):
            w = _Lowered(words_and_emoticons)
            onezero = f"{w[i - 1]} {w[i]}"
            twoonezero = f"{w[i - 2]} {w[i - 1]} {w[i]}"
            twoone = f"{w[i - 2]} {w[i - 1]}"
            threetwoone = f"{w[i - 3]} {w[i - 2]} {w[i - 1]}"
            threetwo = f"{w[i - 3]} {w[i - 2]}"
            for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
                if seq in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[seq]
                    break
            if len(w) - 1 > i:
                zeroone = f"{w[i]} {w[i + 1]}"
                if zeroone in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[zeroone]
            if len(w) - 1 > i + 1:
                zeroonetwo = f"{w[i]} {w[i + 1]} {w[i + 2]}"
                if zeroonetwo in vs.SPECIAL_CASES:
                    valence = vs.SPECIAL_CASES[zeroonetwo]
            for n_gram in (threetwoone, threetwo, twoone):
                if n_gram in vs.BOOSTER_DICT:
                    valence = valence + vs.BOOSTER_DICT[n_gram]
            return valence

        @staticmethod
        def _but_check_lowered(lowered: list[str], sentiments: list[float]) -> list[float]:
            try:
                bi = lowered.index("but")
            except ValueError:
                return sentiments
            return [
                s * 0.5 if k < bi else s * 1.5 if k > bi else s for k, s in enumerate(sentiments)
            ]

    return LinearVader()


def _load_vader() -> Any:
    try:
        import vaderSentiment.vaderSentiment  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "Lexicon sentiment needs the 'vaderSentiment' module from the PyPI package "
            f"'{VADER_PACKAGE}' (it ships its lexicon, no download). Add it to the project "
            "dependencies, or run with `uv run --with vadersentiment ...`."
        ) from err
    return _linear_vader()


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
