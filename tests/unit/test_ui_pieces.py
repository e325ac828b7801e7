"""The success teams' page's pure parts: sealed sessions, CSRF tokens, SVG charts, segments."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from serving.ui import charts
from serving.ui.app import _safe_next
from serving.ui.data import TENURE_BANDS, band, summarize_segments
from serving.ui.session import SECRET_ENV, Sealer, read_session_secret


def test_a_sealed_session_opens_only_unchanged_unexpired_and_under_its_secret():
    sealer = Sealer(b"s" * 32)
    value, session = sealer.seal("key-1", "ana@example.com", hours=1, now=1000.0)
    assert "key-1" not in value and "ana" not in value  # encrypted, not just signed
    opened = sealer.open(value, now=1000.0 + 3599)
    assert opened == session
    assert sealer.open(value, now=1000.0 + 3601) is None  # expired
    assert Sealer(b"t" * 32).open(value, now=1000.0) is None  # another secret
    tampered = value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB")
    assert sealer.open(tampered, now=1000.0) is None
    assert sealer.open("", now=1000.0) is None and sealer.open("garbage", now=1000.0) is None


def test_csrf_tokens_are_bound_to_the_session_id():
    sealer = Sealer(b"x" * 32)
    token = sealer.csrf_token("sid-a")
    assert sealer.csrf_ok("sid-a", token)
    assert not sealer.csrf_ok("sid-b", token)
    assert not sealer.csrf_ok("sid-a", None) and not sealer.csrf_ok(None, token)
    assert not sealer.csrf_ok("sid-a", token[:-1] + ("0" if token[-1] != "0" else "1"))


def test_every_worker_reads_the_same_generated_secret(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    seen: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: seen.append(read_session_secret(tmp_path / "run")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and len(seen[0]) >= 48
    assert (tmp_path / "run" / "ui-session-secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv(SECRET_ENV, "from-the-environment")
    assert read_session_secret(tmp_path / "run") == b"from-the-environment"


@pytest.mark.parametrize(
    "value, kept",
    [
        ("/ui/customers/C-1?x=1", True),
        ("/ui/", True),
        ("https://evil.example/ui/", False),
        ("//evil.example/ui/", False),
        ("/other", False),
        ("/ui/\\evil", False),
        ("", False),
        (None, False),
    ],
)
def test_sign_in_redirects_only_within_the_page(value, kept):
    assert _safe_next(value) == (value if kept else "")


def test_driver_chart_escapes_text_and_colours_the_bad_direction():
    drivers = [
        {"feature": "a", "contribution": 0.3, "description": "<script>x</script> tickets"},
        {"feature": "b", "contribution": -0.1, "description": "long tenure"},
    ]
    churn = charts.driver_chart(drivers, "churn")
    assert "<script>" not in churn and "&lt;script&gt;" in churn
    assert churn.count("<rect") == 2 and 'role="img"' in churn
    # For churn, a positive push is bad (red); for the NPS score, a negative one is.
    assert f'fill="{charts.RISK_UP}"' in churn.split("long tenure")[0]
    nps = charts.driver_chart(drivers, "nps", higher_is_worse=False)
    assert f'fill="{charts.RISK_DOWN}"' in nps.split("long tenure")[0]
    assert charts.driver_chart([], "none") == ""


def test_paired_bars_say_no_data_rather_than_drawing_zero():
    svg = charts.paired_bars([("enterprise", None, 12.0)], "nps", (-100, 100))
    assert "no data" in svg and "12" in svg


def test_bands_and_segment_summaries():
    labels = band(np.array([10, 100, 400, 900, np.nan]), TENURE_BANDS, "over 2 years")
    assert list(labels) == ["under 3 months", "3-12 months", "1-2 years", "over 2 years", "unknown"]
    frame = pd.DataFrame(
        {
            "plan_tier": ["a"] * 6 + ["b"] * 2,
            "p_promoter": [0.5] * 8,
            "p_detractor": [0.2] * 8,
            "churn_probability": [0.1] * 6 + [0.5] * 2,
            "last_score": [10, 10, 10, 3, 3, np.nan, 9, 9],
        }
    )
    rows = {r["segment"]: r for r in summarize_segments(frame, "plan_tier", min_answers=5)}
    assert rows["a"]["actual_nps"] == pytest.approx(20.0)  # 3 promoters, 2 detractors of 5
    assert rows["a"]["predicted_nps"] == pytest.approx(30.0)
    assert rows["b"]["actual_nps"] is None  # 2 answers: too few to show
    assert rows["b"]["churn_risk"] == pytest.approx(0.5)


def test_a_probability_is_never_shown_as_a_certainty():
    from serving.ui.app import _pct

    assert _pct(0.123) == "12%"
    assert _pct(0.996) == "99.6%"
    assert _pct(0.9999) == "99.99%"
    assert _pct(0.004) == "0.4%"
    assert _pct(1e-9) == "0.001%"
    assert _pct(None) == "–"
    # Shown values keep the probabilities' order, so the list's sort reads right.
    values = [0.001, 0.004, 0.2, 0.994, 0.996, 0.9999]
    shown = [float(_pct(v).rstrip("%")) for v in values]
    assert shown == sorted(shown)
