import pandas as pd
import pytest

from text_analytics.sentiment import SatisfactionModel
from text_analytics.signals import extract_customer_texts, find_theme_columns, score_messages
from text_analytics.themes import load_taxonomy


@pytest.fixture(scope="module")
def lexicon_model() -> SatisfactionModel:
    return SatisfactionModel().fit([], [])


def test_score_messages_adds_scores_flags_and_theme_columns(lexicon_model):
    frame = pd.DataFrame(
        {"id": [1, 2, 3, 4], "comment": ["the invoice is wrong, awful", "great!!", None, ""]},
        index=[10, 11, 12, 13],
    )
    out = score_messages(frame, "comment", lexicon_model, load_taxonomy())
    assert list(out.index) == [10, 11, 12, 13]
    assert find_theme_columns(out) == [f"theme_{t}" for t in load_taxonomy().ids]
    assert out["text_score"].iloc[0] < out["text_score"].iloc[1]
    assert out["negative"].tolist() == [True, False, False, False]
    assert out["text_score"].iloc[2:].isna().all() and out["p_negative"].iloc[2:].isna().all()
    assert out["theme_pricing_billing_value"].tolist() == [True, False, False, False]
    assert out["comment"].iloc[2] is None


def test_personal_data_is_masked_in_the_scored_output(lexicon_model):
    frame = pd.DataFrame(
        {"text": ["mail me at jane.doe@example.com", "call +1-555-201-3344 about the bill"]}
    )
    out = score_messages(frame, "text", lexicon_model)
    assert out["text"].tolist() == ["mail me at [email]", "call [phone] about the bill"]
    assert out["theme_pricing_billing_value"].tolist() == [False, True]
    kept = score_messages(frame, "text", lexicon_model, mask=False)
    assert kept["text"].tolist() == frame["text"].tolist()


def test_customer_texts_come_from_customer_chats_tickets_and_nps_comments():
    tables = {
        "chats": pd.DataFrame(
            {
                "conversation_id": ["CH-1", "CH-1", "CH-1"],
                "customer_id": ["C-1", "C-1", "C-1"],
                "sent_at": ["2025-01-02T10:00:00Z", "2025-01-02 10:01:00", "2025-01-02 10:02:00"],
                "author": ["customer", "agent", "Customer"],
                "text": ["the app is slow", "sorry!", "thanks"],
            }
        ),
        "tickets": pd.DataFrame(
            {
                "ticket_id": ["T-1", "T-2"],
                "customer_id": ["C-2", "C-2"],
                "created_at": ["2025-01-01", "2025-01-03"],
                "subject": ["Invoice wrong", "Crash"],
                "body": ["Invoice wrong. We were charged twice.", None],
            }
        ),
        "nps_responses": pd.DataFrame(
            {
                "response_id": ["R-1", "R-2"],
                "customer_id": ["C-3", "C-3"],
                "responded_at": ["2025-01-04", "2025-01-05"],
                "score": [3, 9],
                "comment": ["too expensive", None],
            }
        ),
    }
    texts = extract_customer_texts(tables)
    assert texts["text"].tolist() == [
        "Invoice wrong. We were charged twice.",
        "the app is slow",
        "thanks",
        "Crash",
        "too expensive",
    ]
    assert texts["key"].tolist() == [
        "T-1",
        "CH-1@2025-01-02T10:00:00",
        "CH-1@2025-01-02T10:02:00",
        "T-2",
        "R-1",
    ]
    assert texts["source"].tolist() == ["tickets", "chats", "chats", "tickets", "nps_responses"]
    assert str(texts["timestamp"].dtype) == "datetime64[ns]"
    assert extract_customer_texts({"customers": pd.DataFrame({"customer_id": ["C-1"]})}).empty
