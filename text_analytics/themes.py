"""Themes: the configurable taxonomy, multi-label coding of texts, and its accuracy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from text_analytics.tokens import (
    WordLookup,
    inflect,
    is_negator,
    map_unique,
    split_clauses,
    to_text_list,
    tokenize,
)

DEFAULT_TAXONOMY = "themes.yaml"
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_THEME_KEYS = {
    "label",
    "description",
    "seed_terms",
    "exclude_terms",
    "weak_terms",
    "disable",
    "intent",
    "concepts",
}
# Inflected forms shorter than this match exactly only: "loads" must not catch "leads".
_MIN_FUZZY_INFLECTION = 7
_Span = tuple[int, int, set[int]]  # token start, token end, themes
# Intent themes: a negator this many words before a seed term cancels it ("we are not
# currently evaluating other vendors"), and a seed phrase's words may stand this many words
# apart ("review our renewal" ~ "reviewing all of our renewals").
INTENT_NEGATION_WINDOW = 3
INTENT_MAX_GAP = 2


@dataclass(frozen=True)
class Theme:
    """One theme: what it means, and the terms that code a text with it."""

    id: str
    description: str
    seed_terms: tuple[str, ...]
    exclude_terms: tuple[str, ...] = ()
    weak_terms: tuple[str, ...] = ()
    label: str = ""  # a few words for driver descriptions; defaults to the id in words
    # A stated plan (leaving, cutting, reviewing): negation-aware, with features of its own.
    intent: bool = False
    # Intent themes only: groups of alternative words; a clause with a word of every group
    # codes the theme ("froze" + "spending"), whatever the words between them.
    concepts: tuple[tuple[str, ...], ...] = ()

    @property
    def name(self) -> str:
        return self.label or self.id.replace("_", " ")


@dataclass(frozen=True)
class Taxonomy:
    """The themes a text can be coded with, in report order."""

    themes: tuple[Theme, ...]

    @property
    def ids(self) -> list[str]:
        return [theme.id for theme in self.themes]

    @property
    def intent_ids(self) -> list[str]:
        """Ids of the intent themes (stated plans to leave, cut or review), in report order."""
        return [theme.id for theme in self.themes if theme.intent]

    @property
    def labels(self) -> dict[str, str]:
        """Theme id -> the words driver descriptions use for it."""
        return {theme.id: theme.name for theme in self.themes}

    def theme(self, theme_id: str) -> Theme:
        """The theme with this id."""
        for theme in self.themes:
            if theme.id == theme_id:
                return theme
        raise KeyError(f"no theme {theme_id!r}; themes are {self.ids}")


def _terms(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list):
        raise ValueError(f"{where} must be a list of words or phrases")
    terms = tuple(str(term).strip().lower() for term in value if str(term).strip())
    return terms


def _parse_themes(document: Any, source: str) -> dict[str, Theme | None]:
    """Themes of one YAML document by id; None for a theme the document disables."""
    if not isinstance(document, dict) or not isinstance(document.get("themes"), dict):
        raise ValueError(f"{source}: expected a top-level 'themes:' mapping of id -> theme")
    unknown_top = set(document) - {"themes"}
    if unknown_top:
        raise ValueError(f"{source}: unknown top-level key(s) {sorted(unknown_top)}")
    parsed: dict[str, Theme | None] = {}
    for theme_id, spec in document["themes"].items():
        where = f"{source}: themes.{theme_id}"
        if not isinstance(theme_id, str) or not _ID_RE.match(theme_id):
            raise ValueError(f"{where}: an id is lower-case letters, digits and '_'")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a mapping")
        unknown = set(spec) - _THEME_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        if spec.get("disable", False) is True:
            parsed[theme_id] = None
            continue
        description = spec.get("description")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(f"{where}.description: required, one line of text")
        seeds = _terms(spec.get("seed_terms"), f"{where}.seed_terms")
        if not seeds:
            raise ValueError(f"{where}.seed_terms: required, at least one term")
        label = spec.get("label", "")
        if not isinstance(label, str):
            raise ValueError(f"{where}.label: a few words of text")
        intent = spec.get("intent", False)
        if not isinstance(intent, bool):
            raise ValueError(f"{where}.intent: true or false")
        concepts = spec.get("concepts") or []
        if not isinstance(concepts, list) or not all(isinstance(g, list) for g in concepts):
            raise ValueError(f"{where}.concepts: a list of lists of alternative words")
        if concepts and not intent:
            raise ValueError(f"{where}.concepts: only for intent themes (intent: true)")
        parsed[theme_id] = Theme(
            id=theme_id,
            intent=intent,
            concepts=tuple(
                _terms(group, f"{where}.concepts[{k}]") for k, group in enumerate(concepts)
            ),
            label=label.strip(),
            description=description.strip(),
            seed_terms=seeds,
            exclude_terms=_terms(spec.get("exclude_terms"), f"{where}.exclude_terms"),
            weak_terms=_terms(spec.get("weak_terms"), f"{where}.weak_terms"),
        )
    return parsed


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The shipped taxonomy, with the user's YAML file (if given) merged over it.

    A user theme with a new id is added, one with an existing id replaces the shipped one,
    and ``disable: true`` removes a theme.
    """
    shipped = resources.files("text_analytics").joinpath(DEFAULT_TAXONOMY).read_text()
    merged = _parse_themes(yaml.safe_load(shipped), DEFAULT_TAXONOMY)
    if path is not None:
        path = Path(path)
        user = _parse_themes(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
        merged.update(user)
    themes = tuple(theme for theme in merged.values() if theme is not None)
    if not themes:
        raise ValueError("the taxonomy has no themes left")
    return Taxonomy(themes)


class ThemeCoder:
    """Codes texts with every theme whose seed terms they contain (zero, one or several).

    Each distinct token is mapped once to the seed word it stands for (inflections, doubled
    letters and one typo in long words tolerated); phrases are then matched on those words.
    A seed term found inside one of the theme's exclude terms does not count ("fast answer"
    keeps "fast" from meaning speed); weak terms count only in a clause where no seed term
    matched.

    Intent themes (``intent: true``) are matched differently: a seed term does not count when a
    negator ("not", "no", "never", "don't", ...) stands up to ``INTENT_NEGATION_WINDOW`` words
    before it or between its words, and a phrase's words may be up to ``INTENT_MAX_GAP`` words
    apart inside one clause. "We are not evaluating other vendors" codes nothing; "we started
    evaluating two other vendors" codes competitor evaluation.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        seed_words = {
            word
            for theme in taxonomy.themes
            for term in theme.seed_terms
            + theme.weak_terms
            + tuple(t for group in theme.concepts for t in group)
            for word in tokenize(term)
        }
        forms: dict[str, str] = {}
        fuzzy: set[str] = set(seed_words)
        # Shortest first, so a seed word that inflects another ("cheaper", "cheap") stands for
        # the base word and matches wherever the base does.
        for word in sorted(seed_words, key=lambda w: (len(w), w)):
            base = forms.get(word, word)
            for form in inflect(word):
                forms.setdefault(form, base)
                if len(form) >= _MIN_FUZZY_INFLECTION:
                    fuzzy.add(form)
        self._words = WordLookup(forms, fuzzy_forms=fuzzy)
        n = len(taxonomy.themes)
        self._seed: dict[tuple[str, ...], set[int]] = {}
        self._weak: dict[tuple[str, ...], set[int]] = {}
        self._exclude: dict[tuple[str, ...], set[int]] = {}
        # Intent seed phrases by their first (canonical) word: word tuples and theme index.
        self._intent: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        # Per intent theme with concepts: per group, its alternatives by their first word.
        self._concepts: list[tuple[int, list[dict[str, list[tuple[str, ...]]]]]] = []
        for i, theme in enumerate(taxonomy.themes):
            if theme.intent:
                for term in theme.seed_terms:
                    key = tuple(self._canonical(tokenize(term)))
                    if key:
                        self._intent.setdefault(key[0], []).append((key, i))
                groups = [
                    [tuple(self._canonical(tokenize(t))) for t in group] for group in theme.concepts
                ]
                by_first: list[dict[str, list[tuple[str, ...]]]] = []
                for group in groups:
                    index: dict[str, list[tuple[str, ...]]] = {}
                    for words in group:
                        if words:
                            index.setdefault(words[0], []).append(words)
                    by_first.append(index)
                if by_first:
                    self._concepts.append((i, by_first))
            for index, terms, canonical in (
                (self._seed, () if theme.intent else theme.seed_terms, True),
                (self._weak, theme.weak_terms, True),
                (self._exclude, theme.exclude_terms, False),
            ):
                for term in terms:
                    words = tokenize(term)
                    key = tuple(self._canonical(words)) if canonical else tuple(words)
                    if key:
                        index.setdefault(key, set()).add(i)
        self._lengths = {
            name: sorted({len(k) for k in index})
            for name, index in (
                ("seed", self._seed),
                ("weak", self._weak),
                ("exclude", self._exclude),
            )
        }
        self._n = n

    def _canonical(self, tokens: list[str]) -> list[str]:
        lookup = self._words.lookup
        return [lookup(t) or t for t in tokens]

    @staticmethod
    def _spans(tokens: list[str], index: dict, lengths: list[int]) -> list[_Span]:
        found = []
        for n in lengths:
            for i in range(len(tokens) - n + 1):
                themes = index.get(tuple(tokens[i : i + n]))
                if themes:
                    found.append((i, i + n, themes))
        return found

    @staticmethod
    def _kept(spans: list[_Span], excluded: list[_Span]) -> set[int]:
        """Themes of the spans that no exclude term of the same theme overlaps."""
        kept: set[int] = set()
        for start, end, themes in spans:
            for theme in themes - kept:
                if not any(theme in ex and s < end and start < e for s, e, ex in excluded):
                    kept.add(theme)
        return kept

    @staticmethod
    def _match_gapped(clause: list[str], start: int, words: tuple[str, ...]) -> int | None:
        """End of ``words`` found in order from ``start`` with at most INTENT_MAX_GAP words
        between neighbours and no negator among them, or None."""
        at = start
        for word in words[1:]:
            for step in range(1, INTENT_MAX_GAP + 2):
                k = at + step
                if k >= len(clause) or (step > 1 and is_negator(clause[k - 1])):
                    return None
                if clause[k] == word:
                    at = k
                    break
            else:
                return None
        return at + 1

    def _intent_spans(self, clauses: list[list[str]], raw: list[list[str]]) -> list[_Span]:
        """Spans (in text token positions) of intent seed terms that no negator cancels."""
        found: list[_Span] = []
        offset = 0
        for clause, written in zip(clauses, raw, strict=True):
            for i, token in enumerate(clause):
                for words, theme in self._intent.get(token, ()):
                    end = self._match_gapped(clause, i, words)
                    if end is None:
                        continue
                    before = written[max(0, i - INTENT_NEGATION_WINDOW) : i]
                    if any(is_negator(t) for t in before):
                        continue
                    found.append((offset + i, offset + end, {theme}))
            for theme, groups in self._concepts:
                span = self._concept_span(clause, written, groups)
                if span is not None:
                    found.append((offset + span[0], offset + span[1], {theme}))
            offset += len(clause)
        return found

    @staticmethod
    def _concept_span(
        clause: list[str], written: list[str], groups: list[dict[str, list[tuple[str, ...]]]]
    ) -> tuple[int, int] | None:
        """The span covering one alternative of every group in the clause (the first found
        of each), unless a negator stands before it (INTENT_NEGATION_WINDOW) or inside it."""
        starts, ends = [], []
        for group in groups:
            hit = next(
                (
                    (i, i + len(words))
                    for i, token in enumerate(clause)
                    for words in group.get(token, ())
                    if tuple(clause[i : i + len(words)]) == words
                ),
                None,
            )
            if hit is None:
                return None
            starts.append(hit[0])
            ends.append(hit[1])
        lo, hi = min(starts), max(ends)
        if any(is_negator(t) for t in written[max(0, lo - INTENT_NEGATION_WINDOW) : hi]):
            return None
        return lo, hi

    def _code_one(self, text: str) -> tuple[bool, ...]:
        clauses = split_clauses(text)
        tokens = [t for clause in clauses for t in clause]
        clause_of = [i for i, clause in enumerate(clauses) for _ in clause]
        canonical = self._canonical(tokens)
        lengths = self._lengths
        excluded = self._spans(tokens, self._exclude, lengths["exclude"]) if self._exclude else []
        seeds = [s for s in self._spans(canonical, self._seed, lengths["seed"]) if s[2]]
        themes = self._kept(seeds, excluded)
        if self._intent:
            canonical_clauses, at = [], 0
            for clause in clauses:
                canonical_clauses.append(canonical[at : at + len(clause)])
                at += len(clause)
            themes |= self._kept(self._intent_spans(canonical_clauses, clauses), excluded)
        if self._weak:
            # A weak term counts in a clause where no seed term of any theme was found.
            seeded = {clause_of[start] for start, _, _ in seeds}
            weak = [
                span
                for span in self._spans(canonical, self._weak, lengths["weak"])
                if clause_of[span[0]] not in seeded
            ]
            themes |= self._kept(weak, excluded)
        return tuple(i in themes for i in range(self._n))

    def code(self, texts: Sequence[str] | pd.Series) -> pd.DataFrame:
        """One boolean column per theme id, one row per text (each distinct text coded once)."""
        rows = map_unique(to_text_list(texts), lambda unique: [self._code_one(t) for t in unique])
        matrix = np.array(rows, dtype=bool).reshape(len(rows), self._n)
        return pd.DataFrame(matrix, columns=self.taxonomy.ids)


@lru_cache(maxsize=8)
def build_theme_coder(taxonomy: Taxonomy) -> ThemeCoder:
    """The (cached) coder for a taxonomy."""
    return ThemeCoder(taxonomy)


def code_themes(texts: Sequence[str] | pd.Series, taxonomy: Taxonomy | None = None) -> pd.DataFrame:
    """Multi-label theme coding: one boolean column per theme id, one row per text."""
    return build_theme_coder(taxonomy or load_taxonomy()).code(texts)


def join_theme_labels(coded: pd.DataFrame) -> pd.Series:
    """'|'-joined theme ids per row of a coded frame ('' when none), in taxonomy order."""
    columns = list(coded.columns)
    return pd.Series(
        [
            "|".join(c for c, hit in zip(columns, row, strict=True) if hit)
            for row in coded.to_numpy()
        ],
        index=coded.index,
        dtype=object,
    )


def _truth_matrix(truth_themes: Sequence[str] | pd.Series, ids: list[str]) -> np.ndarray:
    sets = [
        {t for t in str(v).split("|") if t} if isinstance(v, str) else set()
        for v in pd.Series(list(truth_themes), dtype=object)
    ]
    return np.array([[i in s for i in ids] for s in sets], dtype=bool).reshape(len(sets), len(ids))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def evaluate_themes(
    texts: Sequence[str] | pd.Series,
    truth_themes: Sequence[str] | pd.Series,
    taxonomy: Taxonomy | None = None,
) -> pd.DataFrame:
    """Theme coding against known themes ('|'-joined ids per text, '' for none).

    A tidy frame with columns theme, metric, value, support: precision, recall and f1 per
    theme (support = texts truly about it), then for theme "all" micro_precision, micro_recall,
    micro_f1 and exact_set_accuracy (share of texts whose coded set equals the true set,
    support = all texts).
    """
    taxonomy = taxonomy or load_taxonomy()
    ids = taxonomy.ids
    predicted = code_themes(texts, taxonomy).to_numpy()
    truth = _truth_matrix(truth_themes, ids)
    if len(truth) != len(predicted):
        raise ValueError(f"{len(predicted)} texts but {len(truth)} truth rows")
    rows = []
    tp_all = fp_all = fn_all = 0
    for j, theme_id in enumerate(ids):
        tp = int((predicted[:, j] & truth[:, j]).sum())
        fp = int((predicted[:, j] & ~truth[:, j]).sum())
        fn = int((~predicted[:, j] & truth[:, j]).sum())
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        rows += [
            (theme_id, "precision", precision, tp + fn),
            (theme_id, "recall", recall, tp + fn),
            (theme_id, "f1", _ratio(2 * tp, 2 * tp + fp + fn), tp + fn),
        ]
    n = len(truth)
    rows += [
        ("all", "micro_precision", _ratio(tp_all, tp_all + fp_all), n),
        ("all", "micro_recall", _ratio(tp_all, tp_all + fn_all), n),
        ("all", "micro_f1", _ratio(2 * tp_all, 2 * tp_all + fp_all + fn_all), n),
        ("all", "exact_set_accuracy", float((predicted == truth).all(axis=1).mean()), n),
    ]
    return pd.DataFrame(rows, columns=["theme", "metric", "value", "support"])
