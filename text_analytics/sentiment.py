"""Satisfaction read from words: a model learned from past NPS comments, with a lexicon fallback.

For any text it estimates the score (0-10) its author would give and the probability that the
author is a detractor (score <= 6). With enough labelled comments (``min_comments``) the model
is learned from the company's own words: TF-IDF over negation-marked words (1-2 grams) and
character 3-5 grams (which survive misspellings), plus the lexicon polarity as two extra
features; a Ridge regression gives the score and a logistic regression the detractor
probability. Words the company's comments never used get no weight from those n-grams, so each
text's estimate is blended with the lexicon's (mapped onto the scale on the same comments) in
proportion to the share of its content words the model has not seen: "I am furious" still
reads as unhappy although no customer wrote "furious" before. With fewer comments it falls back
to the lexicon alone, mapped monotonically onto the 0-10 scale (that map is fitted on whatever
labelled comments there are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from text_analytics.lexicon import LexiconScorer, VaderLexicon
from text_analytics.tokens import WordLookup, join_tokens, mark_negation, to_text_list, tokenize

DETRACTOR_MAX = 6  # NPS: 0-6 detractor, 7-8 passive, 9-10 promoter
Kind = Literal["learned", "lexicon"]
FEATURE_COLUMNS = ("words", "plain", "lexicon_positive", "lexicon_negative")
_BATCH = 100_000  # distinct texts scored at once: bounds the TF-IDF matrix in memory
# Words that carry no opinion of their own; the known-word share is measured without them.
_FUNCTION_WORDS = frozenset(ENGLISH_STOP_WORDS) - {"not", "no", "never", "nothing", "nobody"}


def clean_labelled(
    texts: Sequence[str] | pd.Series, scores: Sequence[float] | pd.Series
) -> tuple[list[str], np.ndarray]:
    """Comments that have words and a 0-10 score; the rest are dropped."""
    text_list = to_text_list(texts)
    score_array = pd.to_numeric(pd.Series(list(scores), dtype=object), errors="coerce").to_numpy(
        dtype=float
    )
    if len(text_list) != len(score_array):
        raise ValueError(f"{len(text_list)} texts but {len(score_array)} scores")
    keep = (
        np.array([bool(t.strip()) for t in text_list], dtype=bool)
        & ~np.isnan(score_array)
        & (score_array >= 0)
        & (score_array <= 10)
    )
    return [t for t, k in zip(text_list, keep, strict=True) if k], score_array[keep]


def prepare_features(texts: Sequence[str], lexicon: LexiconScorer) -> pd.DataFrame:
    """The frame the learned pipelines read: negation-marked words, plain tokens, polarity."""
    text_list = to_text_list(texts)
    compound = np.asarray(lexicon.compound(text_list), dtype=float)
    return pd.DataFrame(
        {
            "words": [mark_negation(t) for t in text_list],
            "plain": [join_tokens(t) for t in text_list],
            "lexicon_positive": np.clip(compound, 0, None),
            "lexicon_negative": np.clip(compound, None, 0),
        }
    )


def measure_known_share(texts: Sequence[str], vocabulary: WordLookup) -> np.ndarray:
    """Per text, the share of its content words found (typos allowed) in ``vocabulary``.

    Function words ("the", "is", ...) are left out unless a text has nothing else; a text
    without any word counts as fully known.
    """
    shares = np.ones(len(texts))
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        content = [t for t in tokens if t not in _FUNCTION_WORDS] or tokens
        if content:
            shares[i] = sum(vocabulary.lookup(t) is not None for t in content) / len(content)
    return shares


class LexiconMapping:
    """A monotone map from lexicon polarity (-1..1) to an expected score and P(detractor).

    Fitted on labelled comments when at least ``min_labels`` exist with both detractors and
    others among them: isotonic regression for the score, a one-feature logistic regression for
    the detractor probability (both can only rise, resp. fall, with polarity). Otherwise a fixed
    prior: polarity 0 reads as a 7, -1 as a 0 and +1 as a 10.
    """

    def __init__(self, min_labels: int = 20) -> None:
        self.min_labels = min_labels

    def fit(self, compound: np.ndarray, scores: np.ndarray | None = None) -> LexiconMapping:
        """Learn the map from polarity to score; keep the prior when labels are too few."""
        self.fitted_on_ = 0
        self.score_map_: IsotonicRegression | None = None
        self.detractor_map_: LogisticRegression | None = None
        if scores is None or len(scores) < self.min_labels:
            return self
        x = np.asarray(compound, dtype=float).reshape(-1, 1)
        y = np.asarray(scores, dtype=float)
        detractor = y <= DETRACTOR_MAX
        if detractor.all() or not detractor.any():
            return self
        self.score_map_ = IsotonicRegression(y_min=0, y_max=10, out_of_bounds="clip").fit(
            x[:, 0], y
        )
        logistic = LogisticRegression().fit(x, detractor)
        if logistic.coef_[0, 0] < 0:  # more positive words, fewer detractors; else keep prior
            self.detractor_map_ = logistic
        self.fitted_on_ = len(y)
        return self

    def transform(self, compound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(expected score 0-10, detractor probability) per polarity value."""
        c = np.clip(np.asarray(compound, dtype=float), -1, 1)
        if self.score_map_ is not None:
            score = self.score_map_.predict(c)
        else:
            score = np.where(c >= 0, 7 + 3 * c, 7 + 7 * c)
        if self.detractor_map_ is not None:
            p = self.detractor_map_.predict_proba(c.reshape(-1, 1))[:, 1]
        else:
            p = expit(-0.6 - 5.0 * c)
        return np.clip(score, 0, 10), p


class SatisfactionModel:
    """Expected NPS score and detractor probability of a text, learned from NPS comments.

    ``fit(texts, scores)`` learns from past comments and their 0-10 scores. With at least
    ``min_comments`` usable comments (and detractors as well as others among them) it fits the
    learned model (``kind_ == "learned"``); otherwise the lexicon fallback
    (``kind_ == "lexicon"``). ``n_comments_`` is how many comments it saw.
    """

    def __init__(
        self,
        min_comments: int = 200,
        lexicon: LexiconScorer | None = None,
        alpha: float = 1.0,
        c: float = 1.0,  # 4.0 before: 1.0 ranked later comments better in two demo worlds
        lexicon_weight: float = 2.0,
        min_char_df: int = 2,
    ) -> None:
        self.min_comments = min_comments
        self.lexicon = lexicon
        self.alpha = alpha
        self.c = c
        self.lexicon_weight = lexicon_weight
        self.min_char_df = min_char_df

    # Read-only aliases, so a run report can say `model.kind` and `model.n_comments`.
    @property
    def kind(self) -> Kind:
        return self.kind_

    @property
    def n_comments(self) -> int:
        return self.n_comments_

    def _feature_transformer(self) -> ColumnTransformer:
        return ColumnTransformer(
            [
                (
                    "words",
                    TfidfVectorizer(
                        token_pattern=r"\S+",
                        lowercase=False,
                        ngram_range=(1, 2),
                        sublinear_tf=True,
                        dtype=np.float32,
                    ),
                    "words",
                ),
                (
                    "chars",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=(3, 5),
                        lowercase=False,
                        min_df=self.min_char_df,
                        sublinear_tf=True,
                        dtype=np.float32,
                    ),
                    "plain",
                ),
                ("lexicon", "passthrough", ["lexicon_positive", "lexicon_negative"]),
            ],
            transformer_weights={"words": 1.0, "chars": 1.0, "lexicon": self.lexicon_weight},
            sparse_threshold=1.0,
        )

    def fit(
        self, texts: Sequence[str] | pd.Series, scores: Sequence[float] | pd.Series
    ) -> SatisfactionModel:
        """Learn from past comments and their 0-10 scores (empty comments are ignored)."""
        comments, y = clean_labelled(texts, scores)
        self.lexicon_ = self.lexicon if self.lexicon is not None else VaderLexicon()
        self.n_comments_ = len(comments)
        detractor = y <= DETRACTOR_MAX
        both_classes = bool(detractor.any() and not detractor.all())
        self.score_pipeline_: Pipeline | None = None
        self.detractor_pipeline_: Pipeline | None = None
        self.mapping_: LexiconMapping | None = None
        self.vocabulary_: WordLookup | None = None
        if self.n_comments_ >= self.min_comments and both_classes:
            self.kind_: Kind = "learned"
            features = self._feature_transformer()
            frame = prepare_features(comments, self.lexicon_)
            x = features.fit_transform(frame)
            # Both heads share the fitted features, so scoring transforms each text once.
            ridge = Ridge(alpha=self.alpha).fit(x, y)
            logistic = LogisticRegression(C=self.c, max_iter=2000).fit(x, detractor)
            self.score_pipeline_ = Pipeline([("features", features), ("model", ridge)])
            self.detractor_pipeline_ = Pipeline([("features", features), ("model", logistic)])
            compound = (frame["lexicon_positive"] + frame["lexicon_negative"]).to_numpy()
            self.mapping_ = LexiconMapping().fit(compound, y)
            self.vocabulary_ = WordLookup({t: t for c in comments for t in tokenize(c)})
        else:
            self.kind_ = "lexicon"
            compound = self.lexicon_.compound(comments) if comments else np.array([])
            self.mapping_ = LexiconMapping().fit(compound, y)
        return self

    def describe(self) -> str:
        """One sentence a run log can print: which model, learned from how many comments."""
        if self.kind_ == "learned":
            return (
                f"learned satisfaction model (TF-IDF words + characters + {self.lexicon_.name} "
                f"lexicon) fitted on {self.n_comments_} NPS comments"
            )
        assert self.mapping_ is not None
        mapped = (
            f"its scale fitted on {self.mapping_.fitted_on_} comments"
            if self.mapping_.fitted_on_
            else "a default scale"
        )
        return (
            f"{self.lexicon_.name} lexicon fallback ({self.n_comments_} NPS comments < "
            f"min_comments={self.min_comments} or one class only), {mapped}"
        )

    def _predict_unique(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not texts:
            return np.array([]), np.array([])
        if self.kind_ == "learned":
            assert self.score_pipeline_ is not None and self.detractor_pipeline_ is not None
            assert self.mapping_ is not None and self.vocabulary_ is not None
            frame = prepare_features(texts, self.lexicon_)
            x = self.score_pipeline_.named_steps["features"].transform(frame)
            score = np.clip(self.score_pipeline_.named_steps["model"].predict(x), 0, 10)
            p = self.detractor_pipeline_.named_steps["model"].predict_proba(x)[:, 1]
            compound = (frame["lexicon_positive"] + frame["lexicon_negative"]).to_numpy()
            lexicon_score, lexicon_p = self.mapping_.transform(compound)
            known = measure_known_share(texts, self.vocabulary_)
            return (
                known * score + (1 - known) * lexicon_score,
                known * p + (1 - known) * lexicon_p,
            )
        assert self.mapping_ is not None
        return self.mapping_.transform(self.lexicon_.compound(texts))

    def predict(self, texts: Sequence[str] | pd.Series) -> pd.DataFrame:
        """``text_score`` (expected 0-10 score) and ``p_negative`` (P(detractor)) per text.

        Each distinct text is scored once, in batches (bounded memory); empty texts get NaN.
        """
        text_list = to_text_list(texts)
        codes, uniques = pd.factorize(pd.Series(text_list, dtype=object), sort=False)
        unique_list = [str(u) for u in uniques]
        has_words = np.array([bool(u.strip()) for u in unique_list], dtype=bool)
        score_u = np.full(len(unique_list), np.nan)
        p_u = np.full(len(unique_list), np.nan)
        worded = [u for u, w in zip(unique_list, has_words, strict=True) if w]
        parts = [
            self._predict_unique(worded[start : start + _BATCH])
            for start in range(0, len(worded), _BATCH)
        ]
        if parts:
            score_u[has_words] = np.concatenate([score for score, _ in parts])
            p_u[has_words] = np.concatenate([p for _, p in parts])
        return pd.DataFrame({"text_score": score_u[codes], "p_negative": p_u[codes]})

    def predict_score(self, texts: Sequence[str] | pd.Series) -> np.ndarray:
        """Expected 0-10 score per text."""
        return self.predict(texts)["text_score"].to_numpy()

    def predict_detractor_proba(self, texts: Sequence[str] | pd.Series) -> np.ndarray:
        """Probability per text that its author is a detractor (score <= 6)."""
        return self.predict(texts)["p_negative"].to_numpy()


def fit_satisfaction_model(
    nps_responses: pd.DataFrame,
    min_comments: int = 200,
    lexicon: LexiconScorer | None = None,
) -> SatisfactionModel:
    """A SatisfactionModel fitted on an ``nps_responses`` contract table (comment, score)."""
    if "comment" not in nps_responses.columns:
        comments: pd.Series = pd.Series([], dtype=object)
        scores: pd.Series = pd.Series([], dtype=float)
    else:
        comments, scores = nps_responses["comment"], nps_responses["score"]
    return SatisfactionModel(min_comments=min_comments, lexicon=lexicon).fit(comments, scores)


@dataclass(frozen=True)
class SentimentCV:
    """Held-out quality of the learned model and of the lexicon baseline on the same folds."""

    n_comments: int
    folds: int
    kind: Kind  # what fit() would choose on all these comments with this min_comments
    learned_auc: float
    learned_mae: float
    lexicon_auc: float
    lexicon_mae: float

    def to_frame(self) -> pd.DataFrame:
        """One row per model: detractor ROC-AUC, score MAE, comments used."""
        return pd.DataFrame(
            {
                "model": ["learned", "lexicon"],
                "detractor_auc": [self.learned_auc, self.lexicon_auc],
                "score_mae": [self.learned_mae, self.lexicon_mae],
                "n_comments": [self.n_comments, self.n_comments],
            }
        )

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def cross_validate(
    texts: Sequence[str] | pd.Series,
    scores: Sequence[float] | pd.Series,
    folds: int = 5,
    min_comments: int = 200,
    lexicon: LexiconScorer | None = None,
    seed: int = 0,
) -> SentimentCV:
    """K-fold detractor ROC-AUC and score MAE: learned model vs lexicon baseline.

    Identical comments stay in one fold (a copy in the training folds would flatter the learned
    model). The lexicon's map to the 0-10 scale is fitted on the training folds only. The
    learned model is measured even below ``min_comments``, so the threshold can be checked on
    real data; ``kind`` says which model ``fit`` would choose.
    """
    comments, y = clean_labelled(texts, scores)
    n = len(comments)
    groups = pd.factorize(pd.Series([join_tokens(t) for t in comments]))[0]
    if len(np.unique(groups)) < folds:
        raise ValueError(f"{len(np.unique(groups))} distinct comments: too few for {folds} folds")
    detractor = y <= DETRACTOR_MAX
    if detractor.all() or not detractor.any():
        raise ValueError("cross-validation needs detractors and non-detractors")
    scorer = lexicon if lexicon is not None else VaderLexicon()
    compound = scorer.compound(comments)
    learned_score, learned_p = np.empty(n), np.empty(n)
    lexicon_score, lexicon_p = np.empty(n), np.empty(n)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(n), y, groups):
        model = SatisfactionModel(min_comments=0, lexicon=scorer)
        model.fit([comments[i] for i in train], y[train])
        predicted = model.predict([comments[i] for i in test])
        learned_score[test] = predicted["text_score"].to_numpy()
        learned_p[test] = predicted["p_negative"].to_numpy()
        mapping = LexiconMapping().fit(compound[train], y[train])
        lexicon_score[test], lexicon_p[test] = mapping.transform(compound[test])
    return SentimentCV(
        n_comments=n,
        folds=folds,
        kind="learned" if n >= min_comments else "lexicon",
        learned_auc=float(roc_auc_score(detractor, learned_p)),
        learned_mae=float(mean_absolute_error(y, learned_score)),
        lexicon_auc=float(roc_auc_score(detractor, lexicon_p)),
        lexicon_mae=float(mean_absolute_error(y, lexicon_score)),
    )
