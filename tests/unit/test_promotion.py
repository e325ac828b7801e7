import pytest

from training.registry import decide_promotion


@pytest.mark.parametrize(
    ("candidate", "champion", "tolerance", "promote", "says"),
    [
        ({"churn": 0.80, "nps": 1.2}, None, 0.0, True, "no champion yet"),
        ({"churn": 0.81, "nps": 1.2}, {"churn": 0.80, "nps": 1.2}, 0.0, True, "churn roc_auc"),
        ({"churn": 0.80, "nps": 1.1}, {"churn": 0.80, "nps": 1.2}, 0.0, True, "nps mae"),
        ({"churn": 0.80, "nps": 1.2}, {"churn": 0.80, "nps": 1.2}, 0.0, False, "no head improved"),
        ({"churn": 0.82, "nps": 1.3}, {"churn": 0.80, "nps": 1.2}, 0.0, False, "worse"),
        ({"churn": 0.82, "nps": 1.205}, {"churn": 0.80, "nps": 1.2}, 0.01, True, "not better"),
        ({"churn": 0.79}, {"churn": 0.80}, 0.0, False, "worse"),
        ({"churn": 0.85}, {"churn": 0.80, "nps": 1.2}, 0.0, False, "does not"),
        ({"churn": 0.80, "nps": 1.2}, {"churn": 0.80}, 0.0, True, "new head"),
    ],
)
def test_promotion_gate(candidate, champion, tolerance, promote, says):
    decision = decide_promotion(candidate, champion, tolerance)
    assert decision.promote is promote
    assert any(says in reason for reason in decision.reasons), decision.reasons
