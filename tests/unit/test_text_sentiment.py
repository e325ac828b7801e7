import pickle
import sys
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from demo.generator import DemoConfig, generate_demo
from text_analytics.lexicon import LexiconScorer, VaderLexicon
from text_analytics.sentiment import (
    LexiconMapping,
    SatisfactionModel,
    cross_validate,
    fit_satisfaction_model,
)
from text_analytics.themes import code_themes


@lru_cache(maxsize=1)
def demo_comments() -> pd.DataFrame:
    """NPS comments of a 3000-customer demo company (about 3400 comments)."""
    nps = generate_demo(DemoConfig(customers=3000, seed=5)).tables["nps_responses"]
    return nps[nps["comment"].notna()].reset_index(drop=True)


@lru_cache(maxsize=1)
def lexicon() -> VaderLexicon:
    return VaderLexicon()


@pytest.fixture(scope="module")
def learned() -> SatisfactionModel:
    comments = demo_comments()
    return SatisfactionModel(lexicon=lexicon()).fit(comments["comment"], comments["score"])


def score(model: SatisfactionModel, text: str) -> tuple[float, float]:
    row = model.predict([text]).iloc[0]
    return float(row["text_score"]), float(row["p_negative"])


def test_enough_comments_give_the_learned_model_and_say_so(learned):
    assert learned.kind_ == learned.kind == "learned"
    assert learned.n_comments_ == learned.n_comments == len(demo_comments())
    assert f"{len(demo_comments())} NPS comments" in learned.describe()


@pytest.mark.parametrize("n", [0, 50, 199])
def test_fewer_comments_than_the_threshold_fall_back_to_the_lexicon(n):
    comments = demo_comments().head(n)
    model = SatisfactionModel(min_comments=200, lexicon=lexicon())
    model.fit(comments["comment"], comments["score"])
    assert model.kind_ == "lexicon"
    assert model.n_comments_ == n
    assert "lexicon" in model.describe()
    out = model.predict(
        ["great!!", "awful", "not happy with the support", "happy with the support"]
    )
    assert out["text_score"].between(0, 10).all() and out["p_negative"].between(0, 1).all()
    great, awful, unhappy, happy = out["text_score"]
    assert great > awful and happy > unhappy
    assert out["p_negative"].iloc[1] > out["p_negative"].iloc[0]


def test_comments_without_words_or_scores_are_not_counted():
    texts = ["great", None, "", "   ", "awful", "fine"]
    scores = [10, 3, 2, 9, np.nan, 11]
    model = SatisfactionModel(lexicon=lexicon()).fit(texts, scores)
    assert model.n_comments_ == 1


def test_fit_from_the_contract_table(learned):
    model = fit_satisfaction_model(demo_comments(), lexicon=lexicon())
    assert model.kind_ == "learned" and model.n_comments_ == learned.n_comments_
    no_comments = fit_satisfaction_model(
        pd.DataFrame({"score": [9, 3]}), min_comments=10, lexicon=lexicon()
    )
    assert no_comments.kind_ == "lexicon" and no_comments.n_comments_ == 0


@pytest.mark.parametrize(
    ("negated", "plain"),
    [
        ("not happy with the support", "happy with the support"),
        ("the app is not great", "the app is great"),
        ("I would not recommend you", "I would recommend you"),
        ("support wasn't helpful", "support was helpful"),
    ],
)
def test_negation_lowers_the_score(learned, negated, plain):
    negated_score, negated_p = score(learned, negated)
    plain_score, plain_p = score(learned, plain)
    assert negated_score < plain_score - 1.0
    assert negated_p > plain_p


def test_a_misspelled_complaint_reads_as_negative(learned):
    text_score, p_negative = score(learned, "terible servcie, very dissapointed")
    assert p_negative >= 0.5
    assert text_score < 6.5
    assert text_score < score(learned, "ok")[0]


def test_mixed_feelings_sit_between_praise_and_complaint_and_code_both_themes(learned):
    praise = score(learned, "love the product, great support")[0]
    mixed = score(learned, "love the product, hate the billing")[0]
    complaint = score(learned, "hate the billing, terrible support")[0]
    assert complaint + 0.5 < mixed < praise - 0.5
    themes = code_themes(["love the product, hate the billing"]).iloc[0]
    assert themes["product_bugs"] and themes["pricing_billing_value"]


def test_short_answers(learned):
    great_score, great_p = score(learned, "great!!")
    assert great_score >= 9 and great_p < 0.1
    for text in ("ok", "meh"):
        text_score, _ = score(learned, text)
        assert 6 < text_score < great_score - 1, text
    awful_score, awful_p = score(learned, "awful")
    assert awful_p > 0.5 and awful_score < 6.5


def test_words_no_customer_used_still_carry_sentiment(learned):
    # Neither "furious" nor "delighted" is in the demo company's comments.
    vocabulary = " ".join(demo_comments()["comment"]).lower()
    assert "furious" not in vocabulary and "delighted" not in vocabulary
    furious_score, furious_p = score(learned, "I am furious")
    delighted_score, delighted_p = score(learned, "I am delighted")
    assert furious_p > 0.5 > delighted_p
    assert furious_score < delighted_score - 2


def test_predictions_are_per_text_and_empty_texts_get_none(learned):
    out = learned.predict(["great", "", None, "great"])
    assert len(out) == 4
    assert out["text_score"].isna().tolist() == [False, True, True, False]
    assert out["text_score"].iloc[0] == out["text_score"].iloc[3]


def test_the_fitted_model_pickles(learned):
    texts = ["not happy with the support", "great!!"]
    copy = pickle.loads(pickle.dumps(learned))
    pd.testing.assert_frame_equal(copy.predict(texts), learned.predict(texts))


def test_cross_validation_learned_beats_the_lexicon_on_held_out_comments():
    comments = demo_comments()
    result = cross_validate(comments["comment"], comments["score"], folds=5, lexicon=lexicon())
    assert result.n_comments == len(comments) and result.kind == "learned"
    assert result.learned_auc > result.lexicon_auc + 0.05
    assert result.learned_mae < result.lexicon_mae - 0.1
    assert result.learned_auc > 0.8
    frame = result.to_frame()
    assert list(frame["model"]) == ["learned", "lexicon"]


def test_the_lexicon_mapping_is_monotone_and_fitted_on_labels():
    rng = np.random.default_rng(0)
    compound = rng.uniform(-1, 1, 400)
    scores = np.clip(np.round(7 + 3 * compound + rng.normal(0, 1.5, 400)), 0, 10)
    mapping = LexiconMapping().fit(compound, scores)
    assert mapping.fitted_on_ == 400
    grid = np.linspace(-1, 1, 41)
    mapped_score, mapped_p = mapping.transform(grid)
    assert (np.diff(mapped_score) >= 0).all() and (np.diff(mapped_p) <= 0).all()
    prior_score, prior_p = LexiconMapping().fit(compound[:5], scores[:5]).transform(grid)
    assert (np.diff(prior_score) >= 0).all() and (np.diff(prior_p) <= 0).all()


def test_vader_respells_misspelled_sentiment_words_only():
    vader = lexicon()
    assert isinstance(vader, LexiconScorer)
    assert vader.respell("terible servcie, very dissapointed") == (
        "terrible servcie, very disappointed"
    )
    for text in ("this bug is killing us", "we tried the billing page", "where is the thread"):
        assert vader.respell(text) == text
    assert vader.compound(["terible"])[0] < -0.3


def test_a_missing_vader_package_raises_an_import_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)
    with pytest.raises(ImportError, match="vadersentiment"):
        VaderLexicon()
