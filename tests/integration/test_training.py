"""Training end to end against a real SQLite MLflow store (the `trained` session fixture)."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.snapshots import active_customers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(trained):
    settings, _ = trained
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    return MlflowClient(settings.tracking_uri, settings.registry_uri)


def _load_dict(client: MlflowClient, run_id: str, path: str, tmp_path: Path) -> dict:
    """A run's JSON artifact through this test's client: the global tracking URI may name
    another test's store by the time this runs."""
    return json.loads(Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text())


@pytest.fixture(scope="module")
def champion(trained, client):
    settings, _ = trained
    mlflow.set_tracking_uri(settings.tracking_uri)  # a test before may have moved them
    mlflow.set_registry_uri(settings.registry_uri)
    return mlflow.pyfunc.load_model(f"models:/{settings.registry.model_name}@champion")


@pytest.fixture(scope="module")
def recent(trained, champion, demo_tables):
    """Feature rows of every customer active at the latest labelled as-of date."""
    bundle = champion.unwrap_python_model()
    as_of = pd.Timestamp(max(bundle.info["validation_window"]))
    pairs = pd.DataFrame({"customer_id": active_customers(demo_tables, as_of), "as_of": as_of})
    return bundle.features_for(demo_tables, pairs)


def test_first_run_registers_a_champion_with_lineage(trained, client, tmp_path):
    settings, result = trained
    assert result.promoted and result.reasons == ["there is no champion yet"]
    version = client.get_model_version_by_alias(settings.registry.model_name, "champion")
    assert str(version.version) == result.model_version
    assert version.tags["promotion"] == "champion"
    run = client.get_run(result.run_id)
    assert run.data.params["horizon_days"] == "90"
    assert run.data.params["split_strategy"] == "temporal"
    lineage = _load_dict(client, result.run_id, "lineage.json", tmp_path)
    assert set(lineage["tables"]) == {
        "customers",
        "usage",
        "tickets",
        "chats",
        "nps_responses",
        "churn",
    }
    for table in lineage["tables"].values():
        assert len(table["sha256"]) == 64 and table["rows_kept"] > 0
    assert lineage["valid_as_of"] and max(lineage["train_as_of"]) < min(lineage["valid_as_of"])
    features = _load_dict(client, result.run_id, "features.json", tmp_path)
    assert "tickets_open" in features["features"] and "plan_tier" in features["categorical"]
    # Artifacts live under the project home, never in ./mlruns.
    assert run.info.artifact_uri.startswith(settings.artifacts_path.as_uri())


def test_model_beats_the_baselines_on_the_later_window(trained):
    _, result = trained
    h = result.headline
    auc = h[("churn", "roc_auc")]
    mae = h[("nps", "mae")]
    assert auc["served"] > auc["base_rate"] + 0.15
    assert auc["served"] > auc["last_nps"]
    assert mae["served"] < mae["base_rate"] - 0.3
    assert mae["served"] < mae["last_nps"]
    # The oracle (ground truth) is reported next to them and is the ceiling.
    assert auc["oracle"] > auc["base_rate"] and mae["oracle"] < mae["base_rate"]
    segments = result.metrics.query("model == 'served' and segment != 'all'")
    assert {"plan_tier", "tenure_band"} <= set(segments["segment"])


def test_survey_response_weighting_rebalances_respondents(trained):
    _, result = trained
    checks = result.checks
    assert checks["nps.selection.smd_after"] < checks["nps.selection.smd_before"]
    assert abs(checks["nps.population.bias_weighted"]) < 0.5


def test_pyfunc_scores_plain_string_and_number_columns(champion):
    # Categories as plain strings (not pandas categoricals), any subset of the columns.
    # Numbers are floats: MLflow refuses int64 -> double as a lossy cast.
    plain = pd.DataFrame(
        {
            "plan_tier": ["enterprise", "starter", "unheard-of tier"],
            "region": ["emea", "na", None],
            "seats": [120.0, 3.0, 10.0],
            "tickets_open": [0.0, 5.0, 1.0],
            "usage_logins_30d": [40.0, 0.5, 3.0],
        }
    )
    out = champion.predict(plain)
    assert out["churn_probability"].between(0, 1).all()
    assert out["predicted_nps"].between(0, 10).all()
    assert set(out["nps_category"]) <= {"detractor", "passive", "promoter"}
    probs = out[["p_detractor", "p_passive", "p_promoter"]].sum(axis=1)
    np.testing.assert_allclose(probs, 1.0, atol=1e-6)


def test_more_unresolved_tickets_and_falling_usage_never_lower_churn_risk(champion, recent):
    bundle = champion.unwrap_python_model()
    base = recent.sample(300, random_state=0).reset_index(drop=True)
    previous = bundle.predict_frame(base)["churn_probability"].to_numpy()
    levels = [c for c in base if c.startswith("usage_") and c[-1] == "d" and c[-2].isdigit()]
    trends = [c for c in base if c.startswith("usage_") and c.endswith("_trend")]
    for step in range(1, 6):
        worse = base.copy()
        worse["tickets_open"] += step
        worse["tickets_high_priority_open"] += step // 2
        worse[levels] *= 1 - 0.2 * step
        worse[trends] = worse[trends].fillna(0) - 0.2 * step
        current = bundle.predict_frame(worse)["churn_probability"].to_numpy()
        assert (current >= previous - 1e-12).all(), f"risk fell at step {step}"
        previous = current
    assert (previous > bundle.predict_frame(base)["churn_probability"].to_numpy()).mean() > 0.5


def test_more_open_tickets_never_raise_predicted_nps(champion, recent):
    bundle = champion.unwrap_python_model()
    base = recent.sample(300, random_state=1).reset_index(drop=True)
    before = bundle.predict_frame(base)["predicted_nps"].to_numpy()
    after = bundle.predict_frame(base.assign(tickets_open=base["tickets_open"] + 3))[
        "predicted_nps"
    ]
    assert (after.to_numpy() <= before + 1e-12).all()


def test_changing_the_customer_id_changes_nothing(champion, demo_tables, recent):
    from features.validation import ValidatedTables

    bundle = champion.unwrap_python_model()
    renamed = {c: f"renamed-{i}" for i, c in enumerate(demo_tables["customers"]["customer_id"])}
    frames = {
        name: f.assign(customer_id=f["customer_id"].map(renamed))
        for name, f in demo_tables.frames.items()
    }
    tables = ValidatedTables(frames, {}, demo_tables.report)
    pairs = recent[["customer_id", "as_of"]].head(200)
    features = bundle.features_for(
        tables, pairs.assign(customer_id=pairs["customer_id"].map(renamed))
    )
    original = bundle.predict_frame(recent.head(200))
    pd.testing.assert_frame_equal(bundle.predict_frame(features), original)


def test_hand_written_customers_are_ranked_sensibly(champion):
    bundle = champion.unwrap_python_model()
    healthy = {
        "plan_tier": "enterprise",
        "seats": 80,
        "tenure_days": 900,
        "tickets_open": 0,
        "tickets_30d": 0,
        "nps_last_score": 10,
        "nps_mean": 9.5,
        "nps_responses": 4,
        "tickets_csat_last": 5,
    }
    unhealthy = {
        "plan_tier": "starter",
        "seats": 3,
        "tenure_days": 60,
        "tickets_open": 4,
        "tickets_high_priority_open": 3,
        "tickets_30d": 6,
        "nps_last_score": 2,
        "nps_mean": 3,
        "nps_responses": 2,
        "tickets_csat_last": 1,
    }
    for name in bundle.features:
        if name.startswith("usage_") and name.endswith("0d"):
            healthy[name], unhealthy[name] = 50.0, 0.0
        if name.endswith("_trend") and name.startswith("usage_"):
            healthy[name], unhealthy[name] = 0.1, -0.9
        if name.endswith("_drop"):
            healthy[name], unhealthy[name] = 0.0, 1.0
        # The same customers against their own history and per seat, so that every usage
        # feature tells one story (a model may lean on any of them).
        if name.endswith("_vs_history"):
            healthy[name], unhealthy[name] = 1.0, 0.2
        if name.endswith("_history_z"):
            healthy[name], unhealthy[name] = 0.0, -3.0
        if name.startswith("usage_") and name.endswith("0d_per_seat"):
            healthy[name], unhealthy[name] = 50.0 / 80, 0.0
    out = bundle.predict_frame(pd.DataFrame([healthy, unhealthy]))
    assert out["churn_probability"][1] > 2 * out["churn_probability"][0]
    assert out["predicted_nps"][0] - out["predicted_nps"][1] > 2
    assert out["nps_category"].tolist() == ["promoter", "detractor"]


def test_artifacts_and_model_hold_no_personal_data(trained, demo_data, tmp_path):
    settings, result = trained
    customers = demo_data.tables["customers"]
    secrets = set(customers["contact_email"].head(300)) | set(customers["contact_phone"].head(300))
    secrets |= set(customers["contact_name"].head(300))
    run_files = Path(
        mlflow.artifacts.download_artifacts(
            run_id=result.run_id, dst_path=str(tmp_path / "run"), tracking_uri=settings.tracking_uri
        )
    )
    model_uri = f"models:/{settings.registry.model_name}/{result.model_version}"
    local = Path(
        mlflow.artifacts.download_artifacts(
            model_uri,
            dst_path=str(tmp_path / "model"),
            tracking_uri=settings.tracking_uri,
            registry_uri=settings.registry_uri,
        )
    )
    files = [p for root in (run_files, local) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "python_model.pkl" for p in files)
    blob = b"".join(p.read_bytes() for p in files)
    leaked = [s for s in secrets if s.encode() in blob]
    assert not leaked, leaked[:5]
    assert b"contact_email" not in (local / "input_example.json").read_bytes()


def test_a_worse_model_becomes_a_challenger_and_the_champion_stays(trained, demo_path, client):
    from npsrisk.settings import load_settings
    from training.pipeline import train

    settings, first = trained
    weak = load_settings(
        home=settings.home,
        training={
            "candidates": ["lightgbm"],
            "search_lightgbm": False,
            "lightgbm": {"n_estimators": 2, "early_stopping_rounds": 1, "learning_rate": 0.001},
        },
    )
    second = train(demo_path, weak)
    assert not second.promoted
    assert any("worse" in r or "no head improved" in r for r in second.reasons), second.reasons
    name = settings.registry.model_name
    assert str(client.get_model_version_by_alias(name, "champion").version) == first.model_version
    tags = client.get_model_version(name, second.model_version).tags
    assert tags["promotion"] == "challenger"
    assert "vs champion" in tags["promotion_reason"]
    run = client.get_run(second.run_id)
    assert run.data.tags["promotion"] == "challenger"
    assert json.loads(json.dumps(run.data.tags["promotion_reason"]))


@pytest.mark.parametrize("horizon", [30, 90])
def test_a_customers_and_churn_export_trains_at_any_horizon(tmp_path, horizon):
    """A one-off CRM export (customers + churn in the 120 days before its last date) trains
    on one as-of date, the last date minus the horizon, with that window's churners."""
    from npsrisk.settings import load_settings
    from training.pipeline import train

    rng = np.random.default_rng(5)
    n = 1200
    ids = np.array([f"K{i}" for i in range(n)])
    seats = rng.integers(1, 60, n)
    tier = rng.choice(["basic", "pro", "enterprise"], n)
    end = pd.Timestamp("2024-12-31")
    risk = 1 / (1 + np.exp(-(-1.0 - 0.04 * seats + (tier == "basic") * 1.2)))
    churners = rng.random(n) < risk
    churned_at = end - pd.to_timedelta(rng.integers(0, 120, churners.sum()), "D")
    data = tmp_path / "export"
    data.mkdir()
    pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 900, n), "D"),
            "plan_tier": tier,
            "seats": seats,
        }
    ).to_csv(data / "customers.csv", index=False)
    churn = pd.DataFrame({"customer_id": ids[churners], "churned_at": churned_at})
    churn.to_csv(data / "churn.csv", index=False)

    settings = load_settings(home=tmp_path / "home", training={"lightgbm": {"n_estimators": 100}})
    result = train(data, settings, horizon_days=horizon)
    lineage = json.loads((result.report_dir / "lineage.json").read_text())
    T = churn["churned_at"].max() - pd.Timedelta(days=horizon)
    assert lineage["as_of_dates"] == [str(T.date())]
    assert result.heads == ["churn"]
    positives = (
        (churn["churned_at"] > T) & (churn["churned_at"] <= T + pd.Timedelta(horizon, "D"))
    ).sum()
    gone = (churn["churned_at"] <= T).sum()
    rows = result.metrics.query("model == 'served' and target == 'churn' and segment == 'all'")
    rate = rows.set_index("metric")["value"]["churn_rate"]
    # The validation share of customers holds about its share of the window's churners.
    assert abs(rate - positives / (n - gone)) < 0.06
    assert rows.set_index("metric")["value"]["roc_auc"] > 0.6


def test_scores_are_smooth_distinct_and_never_0_or_1(trained, champion, demo_tables):
    """On the held-out window nearly every customer has their own churn probability."""
    bundle = champion.unwrap_python_model()
    as_of = pd.Timestamp(min(bundle.info["validation_window"]))
    pairs = pd.DataFrame({"customer_id": active_customers(demo_tables, as_of), "as_of": as_of})
    frame = bundle.features_for(demo_tables, pairs)
    p = bundle.predict_frame(frame)["churn_probability"].to_numpy()
    assert p.min() > 0 and p.max() < 1
    assert len(np.unique(p)) >= 0.95 * len(p), (len(np.unique(p)), len(p))
    again = bundle.predict_frame(frame.copy())["churn_probability"].to_numpy()
    np.testing.assert_array_equal(p, again)  # identical inputs, identical outputs


def test_a_raw_score_change_moves_the_probability_the_same_way(champion, recent):
    bundle = champion.unwrap_python_model()
    base = recent.sample(300, random_state=2).reset_index(drop=True)
    X = bundle.encoder.transform(base)
    worse = X.copy()
    worse[:, bundle.features.index("tickets_open")] += 3
    raw_a, raw_b = bundle.churn.raw(X), bundle.churn.raw(worse)
    p_a, p_b = bundle.churn.predict_proba(X), bundle.churn.predict_proba(worse)
    moved = raw_b != raw_a
    assert moved.mean() > 0.5
    assert (np.sign(p_b - p_a)[moved] == np.sign(raw_b - raw_a)[moved]).all()


def test_the_nps_outputs_come_from_one_distribution(champion, recent):
    from npsrisk.settings import RiskTierSettings
    from serving.predictions import predict_rows

    bundle = champion.unwrap_python_model()
    base = recent.head(200).reset_index(drop=True)
    X = bundle.encoder.transform(base)
    rows, _ = predict_rows(
        bundle, X, base["customer_id"].tolist(), lambda r, f: None, True, 3, RiskTierSettings()
    )
    for row in rows:
        dist = np.array(row["score_distribution"])
        assert len(dist) == 11 and abs(dist.sum() - 1) < 1e-4
        assert abs(dist @ np.arange(11) - row["predicted_nps"]) < 1e-3
        cats = row["category_probabilities"]
        assert abs(dist[:7].sum() - cats["detractor"]) < 1e-4
        assert abs(dist[9:].sum() - cats["promoter"]) < 1e-4
        assert row["nps_category"] == max(cats, key=cats.get)
        # Churn drivers in log-odds add up to the probability through the calibrator.
        churn = [d for d in row["drivers"] if d["target"] == "churn"]
        assert churn and all(d["effect"] is not None for d in churn)
        assert all(d["effect"] * d["contribution"] >= 0 for d in churn)  # same direction


def test_a_what_if_moves_with_open_tickets(champion):
    """`{"records": [{"plan_tier": "pro", "tickets_open": 4}]}` as a what-if, on a model that
    weighs open tickets (this fixture's does; the README's example names a feature the 5k
    demo's champion weighs, since a feature a model gives no weight moves nothing)."""
    from npsrisk.settings import RiskTierSettings
    from serving.predictions import ModelCard
    from serving.state import Champion, predict_records

    bundle = champion.unwrap_python_model()
    chosen = Champion(bundle, ModelCard.of("npsrisk", "1", bundle))
    records = [{"plan_tier": "pro", "tickets_open": t} for t in (0, 4, 10)]
    out, _ = predict_records(chosen, records, True, 5, RiskTierSettings())
    churn = [r["churn_probability"] for r in out]
    nps = [r["predicted_nps"] for r in out]
    assert churn[0] < churn[1] <= churn[2], churn
    assert nps[0] > nps[1] >= nps[2], nps
    # The score moves exactly as the driver does: only tickets_open changed, so the raw
    # churn score changes by the change in its contribution (no step hides it).
    X = bundle.encoder.transform_records(records)
    contrib = bundle.contributions(X, "churn")
    j = bundle.features.index("tickets_open")
    np.testing.assert_allclose(np.diff(contrib.sum(axis=1)), np.diff(contrib[:, j]), atol=1e-9)


def test_the_text_features_choice_is_made_on_the_inner_windows_and_logged(
    trained, client, tmp_path
):
    settings, result = trained
    run = client.get_run(result.run_id)
    decision = run.data.params["text_selection"]
    assert decision in {"kept", "dropped"}
    inner = pd.read_csv(
        # Through this test's client: the global tracking URI may name another test's store.
        client.download_artifacts(
            result.run_id, "selection/text_features_inner.csv", dst_path=str(tmp_path)
        )
    )
    assert set(inner["text"]) == {"on", "off"} and set(inner["head"]) == {"churn", "nps"}
    for head in ("churn", "nps"):
        rows = inner[inner["head"] == head]
        delta = (
            rows[rows["text"] == "on"]["value"].mean() - rows[rows["text"] == "off"]["value"].mean()
        )
        assert run.data.metrics[f"text_selection.{head}_delta"] == pytest.approx(delta)
        if delta < -settings.text.selection_tolerance:
            assert decision == "dropped"
    features = _load_dict(client, result.run_id, "features.json", tmp_path)
    has_text = any(name.startswith("text_") for name in features["features"])
    assert has_text == (decision == "kept")
    assert run.data.params["text_features"] == str(decision == "kept")
