import numpy as np
import pandas as pd
import pytest

from features.loading import DataSourceError, load_tables
from features.validation import to_utc_naive, write_validation_report


def customers(n=3, **overrides):
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "signup_date": ["2024-01-01"] * n,
            "plan_tier": ["pro"] * n,
        }
    )
    for column, value in overrides.items():
        frame[column] = value
    return frame


GOOD_TICKET = {
    "ticket_id": "T1",
    "customer_id": "C0",
    "created_at": "2024-02-01T10:00:00",
    "resolved_at": "2024-02-02T10:00:00",
    "csat": "4",
    "reopened": "0",
}


@pytest.mark.parametrize(
    ("table", "row", "reason"),
    [
        ("tickets", {**GOOD_TICKET, "ticket_id": None}, "missing_id:ticket_id"),
        ("tickets", {**GOOD_TICKET, "created_at": "yesterday"}, "unparsable_date:created_at"),
        ("tickets", {**GOOD_TICKET, "csat": "9"}, "out_of_range:csat"),
        ("tickets", {**GOOD_TICKET, "csat": "great"}, "not_a_number:csat"),
        ("tickets", {**GOOD_TICKET, "reopened": "1.5"}, "not_an_integer:reopened"),
        ("tickets", {**GOOD_TICKET, "customer_id": "C-404"}, "unknown_customer:customer_id"),
        (
            "tickets",
            {**GOOD_TICKET, "resolved_at": "2024-01-01"},
            "resolved_before_created:resolved_at",
        ),
        (
            "nps_responses",
            {"customer_id": "C0", "responded_at": "2024-03-01", "score": "11"},
            "out_of_range:score",
        ),
        (
            "nps_responses",
            {"customer_id": "C0", "responded_at": "2024-03-01", "score": "-1"},
            "out_of_range:score",
        ),
        (
            "nps_responses",
            {"customer_id": "C0", "responded_at": None, "score": "5"},
            "missing_date:responded_at",
        ),
        (
            "chats",
            {
                "conversation_id": "X",
                "customer_id": "C0",
                "sent_at": "2024-03-01",
                "author": "robot",
                "text": "hi",
            },
            "invalid_value:author",
        ),
        (
            "usage",
            {"customer_id": "C1", "timestamp": "2024-03-01", "metric": "logins", "value": "many"},
            "not_a_number:value",
        ),
        (
            "churn",
            {"customer_id": "C1", "churned_at": "2023-06-01"},
            "churned_before_signup:churned_at",
        ),
    ],
)
def test_each_contract_rule_sets_the_row_aside_with_its_reason(validate_frames, table, row, reason):
    good = {
        "tickets": GOOD_TICKET,
        "nps_responses": {"customer_id": "C1", "responded_at": "2024-03-01", "score": "7"},
        "chats": {
            "conversation_id": "X",
            "customer_id": "C1",
            "sent_at": "2024-03-01",
            "author": "Customer",
            "text": "hi",
        },
        "usage": {"customer_id": "C0", "timestamp": "2024-03-01", "metric": "logins", "value": "3"},
        "churn": {"customer_id": "C2", "churned_at": "2024-06-01"},
    }[table]
    frame = pd.DataFrame([good, row])
    tables = validate_frames({"customers": customers(), table: frame})
    report = tables.report.tables[table]
    assert report.rows_read == 2
    assert report.rows_kept == 1 and report.rows_set_aside == 1
    assert report.reasons == {reason: 1}
    quarantined = tables.quarantine[table]
    assert quarantined["_source_row"].tolist() == [2]  # 1-based row in the input
    assert quarantined["_reasons"].tolist() == [reason]
    assert len(tables[table]) == 1  # the good row goes on


def test_duplicate_ids_keep_the_first_good_row(validate_frames):
    frame = customers(3)
    frame = pd.concat([frame, frame.iloc[[1]].assign(plan_tier="enterprise")], ignore_index=True)
    tables = validate_frames({"customers": frame})
    assert tables.report.tables["customers"].reasons == {"duplicate_id:customer_id": 1}
    kept = tables["customers"].set_index("customer_id")
    assert kept.loc["C1", "plan_tier"] == "pro"


def test_a_row_breaking_two_rules_is_counted_once_with_both_reasons(validate_frames):
    bad = {**GOOD_TICKET, "csat": "0", "customer_id": "nobody"}
    tables = validate_frames({"customers": customers(), "tickets": pd.DataFrame([bad])})
    report = tables.report.tables["tickets"]
    assert report.rows_set_aside == 1
    assert report.reasons == {"out_of_range:csat": 1, "unknown_customer:customer_id": 1}


def test_missing_required_column_sets_the_table_aside(validate_frames):
    usage = pd.DataFrame({"customer_id": ["C0"], "timestamp": ["2024-01-01"], "metric": ["x"]})
    tables = validate_frames({"customers": customers(), "usage": usage})
    assert not tables.has("usage")
    assert "usage" in tables.report.absent_tables
    report = tables.report.tables["usage"]
    assert report.rows_set_aside == 1 and "missing_column:value" in report.reasons
    assert "value" in report.note


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"customer_id": ["C1"]}), "signup_date"),
        (
            pd.DataFrame({"customer_id": [None, ""], "signup_date": ["2024-01-01", "x"]}),
            "No usable customers",
        ),
    ],
)
def test_unusable_customers_fail_with_a_clear_message(validate_frames, frame, message):
    with pytest.raises(DataSourceError, match=message):
        validate_frames({"customers": frame})


def test_timestamps_are_utc_whatever_the_zone_and_order():
    values = pd.Series(
        [
            "2024-01-07T08:44:34+02:00",
            "2024-01-07T08:35:54",
            None,
            "2024-01-07",
            "2024-01-07T08:00:00Z",
            "not a date",
            "2024-03-01T10:00:00-0500",
        ]
    )
    parsed = to_utc_naive(values)
    assert parsed.tolist()[:2] == [
        pd.Timestamp("2024-01-07 06:44:34"),
        pd.Timestamp("2024-01-07 08:35:54"),
    ]
    assert pd.isna(parsed[2]) and pd.isna(parsed[5])
    assert parsed[4] == pd.Timestamp("2024-01-07 08:00")
    assert parsed[6] == pd.Timestamp("2024-03-01 15:00")


def test_timestamps_keep_their_index_labels():
    values = pd.Series(["2025-01-02T10:00:00Z", "2025-01-02 10:02:00"], index=[0, 2])
    assert to_utc_naive(values).tolist() == [
        pd.Timestamp("2025-01-02 10:00"),
        pd.Timestamp("2025-01-02 10:02"),
    ]


def test_null_spellings_are_missing_not_broken(validate_frames):
    tickets = pd.DataFrame([{**GOOD_TICKET, "csat": "NaN", "resolved_at": "null"}])
    tables = validate_frames({"customers": customers(), "tickets": tickets})
    assert tables.report.tables["tickets"].rows_set_aside == 0
    assert np.isnan(tables["tickets"]["csat"][0]) and pd.isna(tables["tickets"]["resolved_at"][0])


def test_folder_csv_and_report_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    customers(2).to_csv(data / "customers.csv", index=False)
    pd.DataFrame([GOOD_TICKET, {**GOOD_TICKET, "ticket_id": "T2", "csat": "7"}]).to_csv(
        data / "tickets.csv", index=False
    )
    (data / "notes.csv").write_text("a,b\n1,2\n")
    raw = load_tables(data)
    assert raw.ignored == ["notes.csv"]
    from features.validation import validate_tables

    tables = validate_tables(raw)
    out = write_validation_report(tables, tmp_path / "report")
    quarantined = pd.read_csv(out / "quarantine" / "tickets.csv")
    assert quarantined["ticket_id"].tolist() == ["T2"]
    assert "out_of_range:csat" in (out / "report.md").read_text()
    assert len(tables.content_hashes["customers"]) == 64


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "no 'customers' table"),
        (lambda p: p.write_text("x"), "neither a folder nor a DuckDB file"),
    ],
)
def test_unreadable_sources_say_what_to_do(tmp_path, setup, message):
    target = tmp_path / "source"
    setup(target)
    with pytest.raises(DataSourceError, match=message):
        load_tables(target)


@pytest.mark.parametrize("file_format", ["parquet", "csv", "duckdb"])
def test_latest_date_reads_only_time_columns_and_agrees_with_the_tables(tmp_path, file_format):
    from dataclasses import replace

    from demo.generator import DemoConfig, generate_demo, write_demo
    from features.loading import latest_date
    from features.validation import validate_tables
    from training.snapshots import data_window

    cfg = replace(DemoConfig(customers=60, seed=5, months=5), file_format=file_format)
    write_demo(generate_demo(cfg), tmp_path, cfg)
    source = tmp_path / "npsrisk.duckdb" if file_format == "duckdb" else tmp_path
    expected = data_window(validate_tables(load_tables(source)))[1]
    assert latest_date(source) == expected


def test_arrow_backed_text_is_checked_exactly_as_python_strings():
    """The DuckDB engine keeps a file's id and text columns in Arrow (no Python string per
    value): the typed values and every reason must be the ones of the Python-string path."""
    import pyarrow as pa

    from features.contract import TABLES
    from features.validation import DateRange, row_reasons

    spec = TABLES["chats"]
    texts = {
        "customer_id": [" C-1 ", "", None, "C-2", "C-3"],
        "conversation_id": ["V1", "V1", "V2", "  ", "V3"],
        "author": ["Customer", "agent ", "robot", None, "BOT"],
        "text": ["  hi ", "", None, "ok", "fine"],
    }
    frame = pd.DataFrame(texts, dtype=object)
    frame["sent_at"] = pd.to_datetime(["2025-01-01"] * 5)
    arrow = frame.copy()
    for name in texts:
        arrow[name] = pd.arrays.ArrowExtensionArray(pa.array(texts[name], pa.string()))
    dates = DateRange.of(None)
    typed, bad, reasons = row_reasons(spec, frame, dates)
    typed_a, bad_a, reasons_a = row_reasons(spec, arrow, dates, arrow_text=True)
    assert list(reasons_a) == list(reasons) and list(bad_a) == list(bad)
    assert bad.sum() >= 3  # a missing id, an empty conversation, an unknown author
    for name in texts:
        assert isinstance(typed_a[name].dtype, pd.ArrowDtype)
        assert typed_a[name].astype(object).where(typed_a[name].notna(), None).tolist() == (
            typed[name].tolist()
        )
