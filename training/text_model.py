"""The text satisfaction model of a run: fitted only on NPS comments it may learn from."""

from __future__ import annotations

import pandas as pd

from features.validation import ValidatedTables
from npsrisk.settings import TextSettings
from text_analytics.sentiment import SatisfactionModel
from text_analytics.signals import TextScorer, cap_texts
from text_analytics.themes import load_taxonomy
from training.snapshots import Split


def labelled_comments(tables: ValidatedTables, split: Split) -> pd.DataFrame:
    """NPS comments with scores the text model may learn from without seeing validation.

    Temporal split: comments answered before the first validation date ends. Customer split:
    the training customers' comments only.
    """
    if not tables.has("nps_responses") or "comment" not in tables["nps_responses"]:
        return pd.DataFrame({"comment": pd.Series(dtype=object), "score": pd.Series(dtype=float)})
    nps = tables["nps_responses"]
    nps = nps[nps["comment"].notna()]
    if split.strategy == "temporal":
        cutoff = min(split.valid_as_of) + pd.Timedelta(days=1)
        return nps[nps["responded_at"] < cutoff]
    train_ids = set(split.train_customers) if split.train_customers is not None else set()
    return nps[nps["customer_id"].isin(train_ids)]


def fit_text_scorer(tables: ValidatedTables, settings: TextSettings, split: Split) -> TextScorer:
    """The satisfaction model (learned, or the lexicon when comments are too few) + themes."""
    comments = labelled_comments(tables, split)
    model = SatisfactionModel(min_comments=settings.min_comments)
    # Learned from what it will be shown: the first max_message_chars of each comment.
    capped, _ = cap_texts(comments["comment"], settings.max_message_chars)
    model.fit(capped, comments["score"])
    return TextScorer(
        model,
        load_taxonomy(settings.taxonomy_path),
        settings.negative_threshold,
        settings.max_message_chars,
    )
