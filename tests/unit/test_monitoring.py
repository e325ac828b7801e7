"""Monitoring logic on small frames: Evidently's result parsing (against the pinned
version), drift verdicts, Benjamini-Hochberg, CBPE, realized figures and decay, triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control
from sklearn.metrics import roc_auc_score

from monitoring.cbpe import estimate, expected_ece, expected_roc_auc
from monitoring.drift import (
    ColumnDrift,
    benjamini_hochberg,
    drift_verdict,
    is_by_construction,
    segment_drift,
)
from monitoring.performance import (
    judge_decay,
    latest_per_period,
    realized_metrics,
)
from monitoring.reference import reference_sample
from monitoring.retrain import decide_triggers, model_age_days
from npsrisk.settings import Settings

SEGMENTS = ["region"]


def population(n: int, seed: int, shift: float = 0.0, shifted_region: str | None = None):
    rng = np.random.default_rng(seed)
    region = rng.choice(["na", "emea", "apac"], n, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame(
        {
            "region": region,
            "tickets": rng.poisson(2.0, n).astype(float),
            "usage": rng.normal(10, 2, n),
            "tenure_days": rng.uniform(0, 1000, n),
            "plan": rng.choice(["starter", "pro"], n),
        }
    )
    for k in range(20):  # many calm columns: the multiple-comparison load of a real run
        frame[f"noise_{k}"] = rng.normal(0, 1, n)
    hit = np.ones(n, bool) if shifted_region is None else region == shifted_region
    frame.loc[hit, "tickets"] += rng.poisson(3.0 * shift, hit.sum())
    frame.loc[hit, "usage"] -= 2.0 * shift
    return frame


def _segments(ref, cur):
    columns = [c for c in ref.columns if c != "region"]
    return segment_drift(ref, cur, columns, {"plan"}, SEGMENTS, 200, 0.01, 0.1, 0.1)


@pytest.fixture(scope="module")
def evidently_result():
    """One real Evidently 0.7 run: 'usage' shifted, 'stable' not, 'plan' re-mixed."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(0)
    n = 2000
    ref = pd.DataFrame(
        {
            "usage": rng.normal(0, 1, n),
            "stable": rng.normal(0, 1, n),
            "plan": rng.choice(["a", "b", "c"], n),
        }
    )
    cur = pd.DataFrame(
        {
            "usage": rng.normal(0.8, 1, n),
            "stable": rng.normal(0, 1, n),
            "plan": rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1]),
        }
    )
    definition = DataDefinition(numerical_columns=["usage", "stable"], categorical_columns=["plan"])
    report = Report(
        [
            DataDriftPreset(
                num_method="wasserstein",
                num_threshold=0.1,
                cat_method="jensenshannon",
                cat_threshold=0.1,
            )
        ],
        include_tests=True,
    )
    return report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )


def test_evidently_results_parse_into_per_column_verdicts(evidently_result):
    from monitoring.evidently_run import parse_drift_result

    parsed = parse_drift_result(evidently_result.dict())
    assert set(parsed.columns) == {"usage", "stable", "plan"}
    assert parsed.columns["usage"]["drifted"] is True
    assert parsed.columns["plan"]["drifted"] is True
    assert parsed.columns["stable"]["drifted"] is False
    assert parsed.columns["usage"]["method"] == "wasserstein"
    assert parsed.columns["usage"]["score"] > 0.5 > parsed.columns["stable"]["score"]
    assert parsed.drifted_count == 2 and parsed.problems == []


def test_the_json_form_parses_the_same(evidently_result):
    import json

    from monitoring.evidently_run import parse_drift_result

    from_json = parse_drift_result(json.loads(evidently_result.json()))
    from_dict = parse_drift_result(evidently_result.dict())
    assert from_json.columns == from_dict.columns


def test_a_report_without_tests_is_a_problem_not_a_calm_verdict():
    from monitoring.evidently_run import parse_drift_result

    result = {
        "metrics": [
            {
                "id": "m1",
                "config": {
                    "type": "evidently:metric_v2:ValueDrift",
                    "column": "x",
                    "method": "wasserstein",
                    "threshold": 0.1,
                },
                "value": 0.5,
            }
        ],
        "tests": [],
    }
    parsed = parse_drift_result(result)
    assert parsed.columns["x"]["drifted"] is None
    assert "include_tests" in parsed.problems[0]


def test_our_effect_sizes_equal_evidentlys(evidently_result):
    from monitoring.drift import effect_size
    from monitoring.evidently_run import parse_drift_result

    # The segment tests reuse Evidently's measures, so an overall and a segment score agree.
    rng = np.random.default_rng(0)
    n = 2000
    ref_usage, ref_stable = rng.normal(0, 1, n), rng.normal(0, 1, n)
    ref_plan = rng.choice(["a", "b", "c"], n)
    cur_usage, cur_stable = rng.normal(0.8, 1, n), rng.normal(0, 1, n)
    cur_plan = rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1])
    parsed = parse_drift_result(evidently_result.dict()).columns
    assert effect_size(ref_usage, cur_usage, False) == pytest.approx(parsed["usage"]["score"])
    assert effect_size(ref_stable, cur_stable, False) == pytest.approx(parsed["stable"]["score"])
    assert effect_size(ref_plan, cur_plan, True) == pytest.approx(parsed["plan"]["score"])


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(1).uniform(0, 0.2, 50) ** 2
    assert np.allclose(benjamini_hochberg(p), false_discovery_control(p))
    with_nan = benjamini_hochberg(np.array([0.01, np.nan, 0.04]))
    assert np.isnan(with_nan[1]) and np.allclose(with_nan[[0, 2]], [0.02, 0.04])


def test_a_stable_sample_stays_calm_across_many_segment_tests():
    ref, cur = population(3000, 1), population(3000, 2)
    segments = _segments(ref, cur)
    assert len(segments) > 60
    assert not segments["moved"].any()
    assert (segments["p_value"] < 0.05).any()  # uncorrected, some tests would have fired
    verdict = drift_verdict([], segments, 0.3, ["tenure_days"])
    assert not verdict.drift and verdict.label == "no drift"


def test_a_drift_confined_to_one_segment_is_named_as_that_segment():
    ref, cur = population(3000, 1), population(3000, 2, shift=1.0, shifted_region="emea")
    segments = _segments(ref, cur)
    verdict = drift_verdict([], segments, 0.3, ["tenure_days"])
    assert verdict.drift
    first = verdict.segments_moved[0]
    assert (first["segment"], first["value"]) == ("region", "emea")
    assert set(first["columns"]) >= {"tickets", "usage"}
    assert "region=emea" in verdict.reasons[0]


def test_drift_by_construction_is_reported_but_never_raises_the_verdict():
    ref, cur = population(3000, 1), population(3000, 2)
    cur["tenure_days"] += 400  # a year later, everyone is older
    segments = _segments(ref, cur)
    assert segments[segments["column"] == "tenure_days"]["moved"].all()
    columns = [
        ColumnDrift("tenure_days", "feature", "wasserstein", 0.1, 1.2, True, True),
        ColumnDrift("usage", "feature", "wasserstein", 0.1, 0.01, False),
    ]
    assert not drift_verdict(columns, segments, 0.3, ["tenure_days"]).drift
    assert drift_verdict(columns, segments, 0.3, []).drift


@pytest.mark.parametrize(
    ("column", "expected"),
    [("tenure_days", True), ("usage_logins_days_since_active", True), ("tickets_7d", False)],
)
def test_by_construction_takes_names_and_patterns(column, expected):
    assert is_by_construction(column, Settings().monitoring.by_construction) is expected


def test_enough_drifted_features_or_a_drifted_prediction_make_drift():
    calm = [ColumnDrift(f"f{i}", "feature", "w", 0.1, 0.01, False) for i in range(7)]
    hot = [ColumnDrift(f"g{i}", "feature", "w", 0.1, 0.3, True) for i in range(3)]
    empty = pd.DataFrame(columns=["segment", "value", "column", "moved"])
    assert drift_verdict(calm + hot, empty, 0.3, []).drift  # 30%
    assert not drift_verdict(calm + hot[:2], empty, 0.3, []).drift  # 22%
    prediction = ColumnDrift("churn_probability", "prediction", "w", 0.1, 0.2, True)
    verdict = drift_verdict([*calm, prediction], empty, 0.3, [])
    assert verdict.drift and "churn_probability" in verdict.reasons[0]


def test_cbpe_expects_what_calibrated_labels_realize():
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 8, 5000)
    draws = [(rng.random(len(p)) < p).astype(float) for _ in range(30)]
    realized_auc = np.mean([roc_auc_score(y, p) for y in draws])
    assert expected_roc_auc(p) == pytest.approx(realized_auc, abs=0.005)
    frame = pd.DataFrame(
        {"churn_probability": p, "p_promoter": 0.5, "p_detractor": 0.2, "predicted_nps": 7.5}
    )
    est = estimate(frame)
    assert est["expected_churn_rate"] == pytest.approx(
        np.mean([y.mean() for y in draws]), abs=0.005
    )
    assert est["predicted_nps"] == pytest.approx(30.0)
    assert 0 < est["expected_calibration_error"] < 0.03


def test_cbpe_auc_handles_ties_and_degenerate_windows():
    assert expected_roc_auc(np.full(100, 0.2)) == pytest.approx(0.5)
    assert np.isnan(expected_roc_auc(np.array([0.3])))
    assert expected_ece(np.full(10_000, 0.1)) < 0.01


def test_realized_figures_on_known_outcomes():
    frame = pd.DataFrame(
        {
            "churn_probability": [0.9, 0.8, 0.3, 0.2, 0.1, 0.6],
            "churned": [1, 1, 0, 0, 0, 0],
            "responded": [True, True, True, False, True, True],
            "nps_score": [2, 5, 9, np.nan, 10, 6],
            "predicted_nps": [3.0, 6.0, 8.0, 7.0, 9.0, 8.0],
            "nps_category": [
                "detractor",
                "detractor",
                "promoter",
                "passive",
                "promoter",
                "passive",
            ],
            "p_detractor": [0.8, 0.6, 0.1, 0.2, 0.05, 0.3],
            "p_passive": [0.1, 0.3, 0.3, 0.5, 0.25, 0.5],
            "p_promoter": [0.1, 0.1, 0.6, 0.3, 0.7, 0.2],
        }
    )
    m = realized_metrics(frame)
    assert m["roc_auc"] == 1.0 and m["churn_rate"] == pytest.approx(2 / 6)
    assert m["brier"] == pytest.approx(
        np.mean((frame["churn_probability"] - frame["churned"]) ** 2)
    )
    assert m["n_answered"] == 5
    assert m["mae"] == pytest.approx(np.mean([1, 1, 1, 1, 2]))
    # Actual detractors (<= 6): scores 2, 5, 6; predicted detractors: the first two.
    assert m["detractor_recall"] == pytest.approx(2 / 3)
    assert m["detractor_precision"] == 1.0


@pytest.mark.parametrize(
    ("realized", "interval", "n", "decayed"),
    [
        (0.70, (0.66, 0.73), 2000, True),  # dropped 0.08, interval below training
        (0.70, (0.55, 0.82), 2000, False),  # wide interval includes training (0.78)
        (0.70, (0.66, 0.73), 150, False),  # too few rows to judge
        (0.76, (0.74, 0.77), 5000, False),  # below, but within the threshold
    ],
)
def test_decay_needs_size_and_an_interval_that_excludes_training(realized, interval, n, decayed):
    flagged, why = judge_decay("roc_auc", realized, interval, 0.78, 0.05, n, 200)
    assert flagged is decayed
    if n < 200:
        assert "not judged" in why


def test_the_latest_prediction_on_or_before_each_period_is_used():
    predictions = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "predicted_at": pd.to_datetime(
                ["2025-05-02", "2025-05-20", "2025-06-03", "2025-05-10"]
            ),
            "churn_probability": [0.1, 0.2, 0.3, 0.4],
        }
    )
    picked = latest_per_period(predictions, [pd.Timestamp("2025-05-31")], 31)
    assert dict(zip(picked["customer_id"], picked["churn_probability"], strict=True)) == {
        "a": 0.2,
        "b": 0.4,
    }


def test_the_reference_sample_carries_no_ids_or_personal_data():
    valid = pd.DataFrame(
        {
            "customer_id": ["C-1", "C-2"],
            "as_of": pd.to_datetime(["2025-01-31"] * 2),
            "owner": ["Ann Smith", "Bo Li"],
            "tickets_7d": [1.0, 2.0],
            "churned": [0.0, 1.0],
            "nps_score": [9.0, np.nan],
            "responded": [True, False],
        }
    )
    predictions = pd.DataFrame({"churn_probability": [0.1, 0.7], "predicted_nps": [8.0, 4.0]})
    sample = reference_sample(valid, predictions, ["tickets_7d"])
    assert "customer_id" not in sample and "owner" not in sample
    assert list(sample.columns) == [
        "as_of", "tickets_7d", "churn_probability", "predicted_nps", "churned", "nps_score",
        "responded",
    ]  # fmt: skip


def test_retrain_triggers_both_ways():
    calm = {"verdict": "no drift", "headline": "calm"}
    drift = {"verdict": "drift", "headline": "segment region=emea moved"}
    decay = {"verdict": "decay", "headline": "roc_auc dropped"}
    assert not decide_triggers(calm, None, 10, 90).needed
    assert decide_triggers(drift, None, 10, 90).reasons == ["drift: segment region=emea moved"]
    both = decide_triggers(drift, decay, 10, 90)
    assert len(both.reasons) == 2 and both.verdicts == {"drift": "drift", "performance": "decay"}
    assert decide_triggers(calm, None, 120, 90).reasons == ["model age: 120 days > 90"]
    now = datetime(2026, 1, 31, tzinfo=UTC)
    assert model_age_days((now - timedelta(days=30)).isoformat(), now) == pytest.approx(30)
    assert model_age_days(None) is None


def test_batch_outputs_are_read_whatever_the_drivers_encoding(tmp_path):
    from serving.batch import read_batch_output

    frame = pd.DataFrame(
        {
            "customer_id": ["a"],
            "churn_probability": [0.2],
            "drivers": [[{"feature": "x", "contribution": 0.1}]],
            "model_version": [3],
            "features_as_of": ["2025-05-31"],
        }
    )
    path = tmp_path / "scores.parquet"
    frame.to_parquet(path)
    read = read_batch_output(path)
    assert "drivers" not in read and read["model_version"].tolist() == ["3"]
    with_drivers = read_batch_output(path, ["customer_id", "drivers"])
    assert with_drivers["drivers"].iloc[0].startswith("[{")


def test_the_fast_segment_measures_equal_scipys_per_pair():
    """segment_drift's one-pass measures (sorted once per column) against scipy on each pair:
    the same Wasserstein and JS distance, the KS p-value of the Kolmogorov limit within
    0.01 of scipy's exact-n asymptotic one, with ties and missing values in the data."""
    from scipy import stats

    from monitoring.drift import effect_size, numeric_drift, p_value

    rng = np.random.default_rng(5)
    for shift, ties in ((0.0, False), (0.05, False), (0.3, True), (0.0, True)):
        r = rng.normal(size=900)
        c = rng.normal(shift, 1.1, size=1300)
        if ties:
            r, c = np.round(r * 2) / 2, np.round(c * 2) / 2
        effect, p = numeric_drift(np.sort(r), np.sort(c))
        assert effect == pytest.approx(effect_size(r, c, False), rel=1e-9)
        assert p == pytest.approx(stats.ks_2samp(r, c, method="asymp").pvalue, abs=0.01)
    ref, cur = population(3000, 1), population(3000, 2, shift=0.2, shifted_region="emea")
    cur.loc[cur.index[::7], "usage"] = np.nan
    segments = _segments(ref, cur)
    for row in segments.sample(25, random_state=0).itertuples():
        cat = row.column == "plan"
        r = ref.loc[ref[row.segment].astype(str) == row.value, row.column].dropna()
        c = cur.loc[cur[row.segment].astype(str) == row.value, row.column].dropna()
        r = r.astype(str).to_numpy() if cat else r.to_numpy(float)
        c = c.astype(str).to_numpy() if cat else c.to_numpy(float)
        assert row.effect == pytest.approx(effect_size(r, c, cat), rel=1e-9)
        assert row.p_value == pytest.approx(p_value(r, c, cat), abs=0.01 if not cat else 1e-9)


def _tenure_world(n: int, seed: int, youngest: float, extra_tickets: float = 0.0):
    """Customers whose 90-day ticket count is limited by their tenure (a customer of a month
    had a month to file tickets), youngest tenure ``youngest`` days."""
    rng = np.random.default_rng(seed)
    tenure = rng.uniform(youngest, 1000, n)
    frame = pd.DataFrame({"tenure_days": tenure, "usage": rng.normal(10, 2, n)})
    frame["tickets_90d"] = rng.poisson(4.0 * np.minimum(tenure, 90) / 90).astype(float)
    frame["band"] = np.where(tenure < 180, "0-6 months", "older")
    young = frame["band"] == "0-6 months"
    frame.loc[young, "tickets_90d"] += rng.poisson(extra_tickets, int(young.sum()))
    return frame


def _band_tests(ref, cur, match_on):
    columns = ["tickets_90d", "usage"]
    return segment_drift(ref, cur, columns, set(), ["band"], 200, 0.01, 0.1, 0.1, match_on)


def test_a_segment_whose_tenure_mix_moved_is_compared_like_for_like():
    """A company that stopped signing up: its youngest band has no customers under 100
    days, so their tenure-limited counts are higher, though nobody behaves differently. Raw,
    the band moves; matched on tenure, it stays calm, and a real change there still shows."""
    ref = _tenure_world(40_000, 1, youngest=0)
    cur = _tenure_world(40_000, 2, youngest=100)
    young = lambda s: s[(s["value"] == "0-6 months") & (s["column"] == "tickets_90d")].iloc[0]  # noqa: E731
    assert young(_band_tests(ref, cur, None))["moved"]  # the false alarm matching removes
    matched = _band_tests(ref, cur, "tenure_days")
    assert not matched["moved"].any(), matched
    assert young(matched)["effect"] < 0.05
    changed = _band_tests(
        ref, _tenure_world(40_000, 3, youngest=100, extra_tickets=1.0), "tenure_days"
    )
    assert young(changed)["moved"]
    assert not changed[changed["value"] == "older"]["moved"].any()


def test_weights_of_one_give_the_unweighted_measures():
    from monitoring.drift import effective_size, numeric_drift

    rng = np.random.default_rng(3)
    r, c = np.sort(rng.normal(size=800)), np.sort(rng.normal(0.2, 1, size=900))
    assert numeric_drift(r, c, np.ones(len(r))) == pytest.approx(numeric_drift(r, c))
    assert effective_size(np.ones(10)) == pytest.approx(10)
    assert effective_size(np.array([1.0, 0.0, 0.0, 0.0])) == pytest.approx(1)


def _periods_world(seed: int, levels: list[float], n: int = 30_000) -> pd.DataFrame:
    """Weekly usage summed over 30 days: a date whose window holds five weeks, not four,
    shows a fifth more, for everyone."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, level in enumerate(levels):
        part = pd.DataFrame({"region": rng.choice(["na", "emea"], n // len(levels))})
        part["usage_30d"] = rng.gamma(4.0, level / 4.0, len(part))
        part["as_of"] = pd.Timestamp("2025-07-31") + pd.DateOffset(months=k)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_a_move_no_larger_than_between_the_references_own_dates_stays_calm():
    ref = _periods_world(1, [4.0, 5.0, 4.0])  # the middle date's window held five weeks
    calm = _periods_world(2, [4.0])  # a four-week date: below the reference's mix
    hit = _periods_world(3, [4.0]).assign(
        usage_30d=lambda f: f["usage_30d"] * np.where(f["region"] == "emea", 0.5, 1.0)
    )

    def tests(cur, calm_period):
        return segment_drift(
            ref, cur, ["usage_30d"], set(), ["region"], 200, 0.01, 0.1, 0.1, None, 20, calm_period
        )

    raw = tests(calm, None)
    assert raw["moved"].all()  # four weeks against a mix of four and five: a false alarm
    against_calm = tests(calm, "as_of")
    assert not against_calm["moved"].any()
    assert (against_calm["calm_effect"] >= against_calm["effect"]).all()
    moved = tests(hit, "as_of").set_index("value")["moved"]
    assert moved["emea"] and not moved["na"]


def test_one_input_alone_in_a_segment_is_reported_not_counted():
    def tests(*moved_columns):
        rows = [
            {"segment": "plan_tier", "value": "starter", "column": c, "n_reference": 900,
             "n_current": 300, "effect": 0.2, "threshold": 0.1, "p_value": 1e-4,
             "q_value": 0.005, "moved": True}
            for c in moved_columns
        ]  # fmt: skip
        return pd.DataFrame(rows)

    alone = drift_verdict([], tests("usage_api_calls_history_z"), 0.3, [], min_columns=2)
    assert not alone.drift and not alone.segments_moved
    assert alone.segments_uncorroborated[0]["columns"] == ["usage_api_calls_history_z"]
    assert drift_verdict([], tests("usage_logins_30d", "tickets_90d"), 0.3, [], 2).drift
    assert drift_verdict([], tests("churn_probability"), 0.3, [], 2).drift  # what the model says
    assert drift_verdict([], tests("usage_api_calls_history_z"), 0.3, [], 1).drift
