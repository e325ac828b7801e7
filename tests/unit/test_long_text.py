"""Very long messages: the lexicon is linear in a text's length, and scoring caps each text."""

import pandas as pd
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from text_analytics.lexicon import VaderLexicon, _linear_vader
from text_analytics.sentiment import SatisfactionModel
from text_analytics.signals import cap_text, cap_texts, score_messages
from text_analytics.themes import load_taxonomy

UNIT = "This is terrible, awful and broken again. I hate it. "


def long_text(n_bytes: int) -> str:
    return (UNIT * (n_bytes // len(UNIT) + 1))[:n_bytes]


@pytest.mark.parametrize(
    "text",
    [
        "not good at all",
        "never so happy with it",
        "without doubt the best",
        "kind of bad, but the app is GREAT!!",
        "I am not happy 😞 but support was great",
        "the shit",
        "no problems, no complaints",
        "least helpful team",
        "bad but good but bad",
        "",
    ],
)
def test_linear_vader_scores_exactly_as_vader(text):
    assert _linear_vader().polarity_scores(text) == SentimentIntensityAnalyzer().polarity_scores(
        text
    )


def test_the_lexicon_reads_a_1_mb_message_in_linear_time():
    # Quadratic VADER took over 300 s on 1 MB; linear takes a few seconds.
    score = VaderLexicon().compound([long_text(2**20)])
    assert -1 <= score[0] < 0


def test_cap_text_cuts_at_a_blank_so_nothing_personal_is_cut_in_two():
    text = "word " * 10 + "mail jane.doe@example.com and more"
    capped = cap_text(text, 60)
    assert len(capped) <= 60 and capped.endswith("mail") and "@" not in capped
    assert cap_text("x" * 100, 10) == "x" * 10  # one long word: cut at the limit
    assert cap_text("short", 10) == "short"
    series, n = cap_texts(pd.Series(["a" * 20, "ok", None]), 10)
    assert n == 1 and series.tolist() == ["a" * 10, "ok", ""]


@pytest.fixture(scope="module")
def model():
    comments = ["great product, love it"] * 30 + ["terrible support, not happy"] * 30
    scores = [10] * 30 + [2] * 30
    return SatisfactionModel(min_comments=10_000).fit(comments, scores)  # the lexicon model


@pytest.mark.parametrize("n_bytes", [2**20, 50 * 2**20])
def test_1_mb_and_50_mb_messages_are_scored_capped_and_counted(model, n_bytes):
    frame = pd.DataFrame({"text": [long_text(n_bytes), "thanks, all good", None]})
    out = score_messages(frame, "text", model, load_taxonomy(), max_chars=5000)
    assert out.attrs["capped_messages"] == 1
    assert len(out.loc[0, "text"]) <= 5000  # what is kept is what was scored
    assert out.loc[0, "negative"] and not out.loc[1, "negative"]
    assert out.loc[0, "text_score"] < out.loc[1, "text_score"]
    assert pd.isna(out.loc[2, "text_score"])
