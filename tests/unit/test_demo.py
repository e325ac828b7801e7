import numpy as np
import pandas as pd
import pytest

from demo.generator import DemoConfig, generate_demo, response_probability, write_demo
from features.loading import load_tables
from features.validation import validate_tables


def test_same_seed_same_data_other_seed_other_data():
    a = generate_demo(DemoConfig(customers=200, seed=5))
    b = generate_demo(DemoConfig(customers=200, seed=5))
    c = generate_demo(DemoConfig(customers=200, seed=6))
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.customer_truth, b.customer_truth)
    assert not a.tables["usage"]["value"].equals(c.tables["usage"]["value"])


def test_written_files_are_byte_identical_for_a_seed(tmp_path):
    cfg = DemoConfig(customers=100, seed=9)
    for out in ("one", "two"):
        write_demo(generate_demo(cfg), tmp_path / out, cfg)
    for name in ("customers", "usage", "tickets", "chats", "nps_responses", "churn"):
        assert (tmp_path / "one" / f"{name}.parquet").read_bytes() == (
            tmp_path / "two" / f"{name}.parquet"
        ).read_bytes()


@pytest.mark.parametrize("file_format", ["csv", "parquet", "duckdb"])
def test_injected_bad_rows_are_all_caught_and_good_data_is_untouched(tmp_path, file_format):
    clean_cfg = DemoConfig(customers=150, seed=4, file_format=file_format)
    dirty_cfg = DemoConfig(customers=150, seed=4, file_format=file_format, bad_rows=0.01)
    write_demo(generate_demo(clean_cfg), tmp_path / "clean", clean_cfg)
    dirty = generate_demo(dirty_cfg)
    write_demo(dirty, tmp_path / "dirty", dirty_cfg)
    source = "npsrisk.duckdb" if file_format == "duckdb" else ""
    clean = validate_tables(load_tables(tmp_path / "clean" / source))
    checked = validate_tables(load_tables(tmp_path / "dirty" / source))
    injected = dirty.manifest["injected_bad_rows"]
    for table, report in checked.report.tables.items():
        assert report.reasons == injected[table], table
        assert clean.report.tables[table].rows_set_aside == 0
        kept = checked[table].reset_index(drop=True)
        expected = clean[table].reset_index(drop=True)
        assert len(kept) == len(expected), table
        for column in ("customer_id",):
            assert kept[column].astype(str).tolist() == expected[column].astype(str).tolist()
        time_column = {
            "customers": "signup_date",
            "usage": "timestamp",
            "tickets": "created_at",
            "chats": "sent_at",
            "nps_responses": "responded_at",
            "churn": "churned_at",
        }[table]
        # Zoned and naive renderings of the same instants parse back to the same UTC times.
        assert (kept[time_column] == expected[time_column]).all(), table


def test_health_drives_what_is_observable(demo_data):
    truth = demo_data.customer_truth
    assert truth["true_churn_probability"].between(0, 1).all()
    assert truth["expected_nps"].between(0, 10).all()
    probs = truth[["p_detractor", "p_passive", "p_promoter"]].sum(axis=1)
    np.testing.assert_allclose(probs, 1.0, atol=1e-9)
    # Healthier customers are expected to churn less and score higher.
    assert truth["health"].corr(truth["true_churn_probability"], method="spearman") < -0.5
    assert truth["health"].corr(truth["expected_nps"]) > 0.8


def test_extremes_answer_surveys_more_often():
    h = np.array([-2.0, 0.35, 2.5])
    p = response_probability(h)
    assert p[0] > p[1] and p[2] > p[1]


def test_drift_event_hits_one_segment_for_a_quarter():
    cfg = DemoConfig(customers=1500, seed=2, drift_event=True)
    data = generate_demo(cfg)
    event = data.manifest["drift_event"]
    truth = data.customer_truth.merge(data.tables["customers"][["customer_id", "region"]])
    inside = truth["as_of"].between(pd.Timestamp(event["start"]), pd.Timestamp(event["end"]))
    emea = truth["region"] == "emea"
    drop_emea = truth[emea & ~inside]["health"].mean() - truth[emea & inside]["health"].mean()
    drop_rest = truth[~emea & ~inside]["health"].mean() - truth[~emea & inside]["health"].mean()
    assert drop_emea > 0.5 and abs(drop_rest) < 0.2
    tickets = data.tables["tickets"].merge(data.tables["customers"][["customer_id", "region"]])
    during = tickets["created_at"].between(pd.Timestamp(event["start"]), pd.Timestamp(event["end"]))
    reliability = tickets["category"] == "performance"
    assert (
        reliability[during & (tickets["region"] == "emea")].mean() > 2 * reliability[~during].mean()
    )


def test_personal_data_columns_exist_and_free_text_sometimes_carries_it(demo_data):
    customers = demo_data.tables["customers"]
    assert customers["contact_email"].str.contains("@").all()
    chats = demo_data.tables["chats"]
    assert chats["text"].str.contains("@", regex=False).sum() > 0


def test_a_large_company_is_made_in_blocks_with_unique_ids(tmp_path, monkeypatch):
    import demo.generator as generator

    monkeypatch.setattr(generator, "BLOCK_CUSTOMERS", 70)
    cfg = DemoConfig(customers=160, seed=8)
    in_memory = generate_demo(cfg)
    manifest = generator.make_demo(cfg, tmp_path / "out")
    assert manifest["blocks"] == 3
    tables = validate_tables(load_tables(tmp_path / "out"))
    assert tables.report.rows_set_aside == 0  # ids unique across blocks, keys all known
    assert tables["customers"]["customer_id"].is_unique and len(tables["customers"]) == 160
    assert tables["tickets"]["ticket_id"].is_unique
    for name, frame in in_memory.tables.items():
        assert len(tables[name]) == len(frame) == manifest["rows"][name]
    truth = pd.read_parquet(tmp_path / "out" / "ground_truth" / "customer_truth.parquet")
    assert set(truth["customer_id"]) <= set(tables["customers"]["customer_id"])
