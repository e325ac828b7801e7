import re

import pandas as pd
import pytest

from features.privacy import EMAIL_RE, mask_personal_data
from text_analytics.report import (
    REPORT_FILES,
    compute_nps,
    count_detractor_themes,
    measure_theme_impact,
    summarize_sentiment_trend,
    write_theme_report,
)

AS_OF = pd.Timestamp("2025-06-30 12:00")
THEMES = ["product_bugs", "pricing_billing_value", "support_experience"]


def days_ago(days: float) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days)


def nps_frame(rows: list[tuple[float, float, list[str]]]) -> pd.DataFrame:
    """(days ago, score, themes) per response."""
    frame = pd.DataFrame(
        {
            "response_id": [f"R-{i}" for i in range(len(rows))],
            "customer_id": [f"C-{i % 4}" for i in range(len(rows))],
            "responded_at": [days_ago(d) for d, _, _ in rows],
            "score": [float(s) for _, s, _ in rows],
            "comment": [", ".join(t) or None for _, _, t in rows],
        }
    )
    for theme in THEMES:
        frame[f"theme_{theme}"] = [theme in t for _, _, t in rows]
    return frame


def messages_frame(rows: list[tuple[float, bool, list[str], str]]) -> pd.DataFrame:
    """(days ago, negative, themes, source) per message."""
    frame = pd.DataFrame(
        {
            "customer_id": [f"C-{i % 3}" for i in range(len(rows))],
            "timestamp": [days_ago(d) for d, _, _, _ in rows],
            "source": [s for _, _, _, s in rows],
            "key": [f"K-{i}" for i in range(len(rows))],
            "text": [
                f"message {i} about " + " and ".join(t) for i, (_, _, t, _) in enumerate(rows)
            ],
            "text_score": [3.0 if n else 8.0 for _, n, _, _ in rows],
            "p_negative": [0.9 if n else 0.1 for _, n, _, _ in rows],
            "negative": [n for _, n, _, _ in rows],
        }
    )
    for theme in THEMES:
        frame[f"theme_{theme}"] = [theme in t for _, _, t, _ in rows]
    return frame


def test_nps_is_percent_promoters_minus_percent_detractors():
    assert compute_nps([10, 9, 8, 7, 6]) == pytest.approx(20.0)
    assert compute_nps([0, 6, 9]) == pytest.approx(100 / 3 - 200 / 3)
    assert pd.isna(compute_nps([]))


def test_theme_impact_on_a_hand_computed_example():
    pricing = ["pricing_billing_value"]
    responses = nps_frame(
        [
            (1, 10, []),
            (2, 9, []),
            (3, 9, pricing),
            (4, 8, []),
            (5, 7, ["product_bugs"]),
            (6, 6, pricing),
            (7, 3, pricing),
            (8, 2, [*pricing, "product_bugs"]),
            (9, 10, []),
            (10, 0, []),
            (200, 0, pricing),  # outside the 90-day window: ignored
        ]
    )
    table = measure_theme_impact(responses, AS_OF, windows=[90]).set_index("theme")
    # In the window: promoters 10, 9, 9, 10 and detractors 6, 3, 2, 0 of 10 -> NPS 0.
    assert table.loc["pricing_billing_value", "nps"] == pytest.approx(0.0)
    assert table.loc["pricing_billing_value", "responses"] == 10
    assert table.loc["pricing_billing_value", "theme_responses"] == 4
    # Without the pricing responses (9, 6, 3, 2): 10, 9, 8, 7, 10, 0 -> (3 - 1) / 6 = 33.3.
    assert table.loc["pricing_billing_value", "nps_without_theme"] == pytest.approx(100 / 3)
    assert table.loc["pricing_billing_value", "impact"] == pytest.approx(-100 / 3)
    # Without the product responses (7, 2): 10, 9, 9, 8, 6, 3, 10, 0 -> (4 - 3) / 8 = 12.5.
    assert table.loc["product_bugs", "impact"] == pytest.approx(0.0 - 12.5)
    # A theme nobody mentioned changes nothing.
    assert table.loc["support_experience", "impact"] == pytest.approx(0.0)


def test_detractor_themes_are_counted_per_window():
    support, pricing = ["support_experience"], ["pricing_billing_value"]
    messages = messages_frame(
        [
            (1, True, support, "chats"),
            (2, True, support, "tickets"),
            (3, True, support, "chats"),
            (2, True, pricing, "chats"),
            (20, True, pricing, "tickets"),
            (3, False, pricing, "chats"),  # not negative: not counted
            (4, True, pricing, "nps_responses"),  # counted through its NPS score instead
            (40, True, support, "chats"),  # older than 30 days
        ]
    )
    responses = nps_frame([(5, 4, pricing), (6, 9, pricing), (50, 2, pricing)])
    labels = {"support_experience": "support experience and response times"}
    table = count_detractor_themes(messages, responses, AS_OF, windows=[7, 30], labels=labels)
    table = table.set_index(["window_days", "theme"])
    assert table.loc[(7, "support_experience"), "mentions"] == 3
    assert table.loc[(7, "support_experience"), "customers"] == 3
    assert table.loc[(7, "support_experience"), "label"] == labels["support_experience"]
    assert table.loc[(7, "pricing_billing_value"), "label"] == "pricing billing value"
    # 7 days: one negative message and one detractor comment (score 4; the 9 is no detractor).
    assert table.loc[(7, "pricing_billing_value"), "mentions"] == 2
    assert table.loc[(7, "pricing_billing_value"), "detractor_comments"] == 1
    assert table.loc[(30, "pricing_billing_value"), "mentions"] == 3
    assert table.loc[(30, "support_experience"), "mentions"] == 3
    assert table.loc[(30, "product_bugs"), "mentions"] == 0


def _burst(theme: list[str], recent_customers: int, prior_per_week: int) -> pd.DataFrame:
    """Negative messages: one per customer in the last 7 days, and a steady earlier rate."""
    rows = [(1 + 0.5 * i, True, theme, "chats") for i in range(recent_customers)]
    rows += [
        (8 + w * 7 + 0.1 * k, True, theme, "chats") for w in range(3) for k in range(prior_per_week)
    ]
    frame = messages_frame(rows)
    frame["customer_id"] = [f"C-{i}" for i in range(len(frame))]
    return frame


@pytest.mark.parametrize(
    ("recent", "prior_per_week", "flagged"),
    [
        (3, 0, True),  # new: three customers raise it this week
        (2, 0, False),  # two customers: not enough to act on
        (6, 2, True),  # three times its usual rate
        (6, 5, False),  # loud, but always this loud: no news
        (4, 3, False),  # a third above the usual rate: below the 1.5x rise
    ],
)
def test_a_theme_is_flagged_when_enough_customers_raise_it_above_its_own_rate(
    recent, prior_per_week, flagged
):
    messages = _burst(["product_bugs"], recent, prior_per_week)
    responses = nps_frame([])
    table = count_detractor_themes(messages, responses, AS_OF, windows=[7])
    row = table.set_index("theme").loc["product_bugs"]
    assert row["mentions"] == recent
    assert row["prior_per_day"] == pytest.approx(prior_per_week / 7)
    assert bool(row["flagged"]) is flagged
    assert not table.set_index("theme").loc["support_experience", "flagged"]


def test_sentiment_trend_per_segment_and_month():
    messages = messages_frame(
        [(1, True, [], "chats"), (2, False, [], "chats"), (3, False, [], "chats")]
    )
    customers = pd.DataFrame({"customer_id": ["C-0", "C-1"], "plan_tier": ["pro", "starter"]})
    trend = summarize_sentiment_trend(messages, customers).set_index("segment")
    # C-0 wrote the negative message (score 3), C-1 a positive one, C-2 has no customer row.
    assert trend.loc["pro", "share_negative"] == 1.0
    assert trend.loc["starter", "mean_text_score"] == 8.0
    assert trend.loc["unknown", "messages"] == 1


def personal_inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    support = ["support_experience"]
    messages = messages_frame([(d, True, support, "chats") for d in (1, 2, 3)])
    messages["text"] = [
        "support never answered, mail me at jane.doe@example.com",
        "call me on +44 20 7946 0958, support is useless",
        "support is slow, my cell is (555) 123-4567",
    ]
    responses = nps_frame([(1, 2, support), (2, 10, [])])
    responses["comment"] = ["awful support. reach me: john.smith@corp.example.org", "great"]
    customers = pd.DataFrame(
        {
            "customer_id": ["C-0", "C-1", "C-2"],
            "plan_tier": ["pro", "starter", "pro"],
            "contact_email": ["a@b.example.com", "c@d.example.com", "e@f.example.com"],
        }
    )
    return messages, responses, customers


def test_the_report_is_written_and_holds_no_personal_data(tmp_path):
    messages, responses, customers = personal_inputs()
    paths = write_theme_report(
        messages,
        responses,
        customers,
        tmp_path / "report",
        as_of=AS_OF,
        labels={"support_experience": "support experience"},
    )
    assert set(paths) == set(REPORT_FILES)
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "Rising themes" in page
    assert "support experience" in page and "support_experience" not in page  # labels, not keys
    visible = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not EMAIL_RE.search(visible)
    assert mask_personal_data(visible) == visible  # no phone number either
    for secret in ("jane.doe", "7946", "123-4567", "john.smith"):
        assert secret not in page
    assert "[email]" in page and "[phone]" in page  # the verbatims are there, masked
    verbatims = pd.read_csv(paths["verbatims"])
    assert len(verbatims) == 3
    assert not verbatims["text"].str.contains("@").any()
    flags = pd.read_csv(paths["detractor_themes"])
    support = flags.query("theme == 'support_experience' and window_days == 7")
    assert support["label"].item() == "support experience"
    assert support["mentions"].item() >= 1 and "flagged" in flags


def test_the_report_needs_scored_frames(tmp_path):
    messages, responses, customers = personal_inputs()
    with pytest.raises(ValueError, match="score_messages"):
        write_theme_report(
            messages.drop(columns=["negative"]), responses, customers, tmp_path, as_of=AS_OF
        )
