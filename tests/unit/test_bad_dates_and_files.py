"""Implausible dates are set aside with their reason; unreadable files are named with the fault."""

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.loading import DataSourceError, latest_date, load_tables
from features.validation import DateRange, validate_tables
from npsrisk.settings import DataSettings


def _folder(tmp_path, usage_writer):
    folder = tmp_path / "export"
    folder.mkdir()
    pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "signup_date": ["2024-01-01", "1900-01-01", "2024-02-01"],
        }
    ).to_csv(folder / "customers.csv", index=False)
    usage_writer(folder)
    return folder


TIMES = [dt.datetime(9999, 12, 31), dt.datetime(1900, 1, 1), dt.datetime(2024, 3, 1)]


def _parquet_us(folder):
    table = pa.table(
        {
            "customer_id": ["C1", "C1", "C1"],
            "timestamp": pa.array(TIMES, pa.timestamp("us")),
            "metric": ["logins"] * 3,
            "value": [1.0, 1.0, 1.0],
        }
    )
    pq.write_table(table, folder / "usage.parquet")


def _csv(folder):
    pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C1", "C1"],
            "timestamp": ["9999-12-31", "1900-01-01", "2024-03-01", "2024-13-45"],
            "metric": ["logins"] * 4,
            "value": [1, 1, 1, 1],
        }
    ).to_csv(folder / "usage.csv", index=False)


@pytest.mark.parametrize("writer", [_parquet_us, _csv])
def test_dates_outside_the_plausible_range_are_set_aside_with_their_reason(tmp_path, writer):
    tables = validate_tables(load_tables(_folder(tmp_path, writer)))
    usage = tables.report.tables["usage"]
    assert usage.reasons["date_out_of_range:timestamp"] == 2  # 9999 and 1900
    assert usage.reasons.get("unparsable_date:timestamp", 0) == (1 if writer is _csv else 0)
    assert tables["usage"]["timestamp"].tolist() == [pd.Timestamp("2024-03-01")]
    customers = tables.report.tables["customers"]
    assert customers.reasons == {"date_out_of_range:signup_date": 1}  # signed up in 1900
    quarantined = tables.quarantine["usage"]["_reasons"].tolist()
    assert quarantined.count("date_out_of_range:timestamp") == 2


@pytest.mark.parametrize("writer", [_parquet_us, _csv])
def test_latest_date_ignores_implausible_dates(tmp_path, writer):
    assert latest_date(_folder(tmp_path, writer)) == pd.Timestamp("2024-03-01")


def test_the_plausible_range_is_a_setting():
    today = pd.Timestamp("2025-06-30")
    default = DateRange.of(today=today)
    assert default.earliest == pd.Timestamp("1970-01-01")
    assert default.latest.date() == dt.date(2025, 7, 7)
    wide = DateRange.of(DataSettings(earliest_date="1850-01-01", future_margin_days=0), today)
    series = pd.Series(
        pd.to_datetime(["1900-01-01", "2025-06-30 23:00", "2025-07-01"], format="ISO8601")
    )
    assert wide.outside(series).tolist() == [False, False, True]


def _truncated_parquet(folder):
    pd.DataFrame(
        {"customer_id": ["C1"] * 50, "timestamp": "2024-03-01", "metric": "x", "value": 1.0}
    ).to_parquet(folder / "usage.parquet")
    data = (folder / "usage.parquet").read_bytes()
    (folder / "usage.parquet").write_bytes(data[: len(data) // 2])


def _empty_csv(folder):
    (folder / "usage.csv").write_bytes(b"")


@pytest.mark.parametrize(
    ("writer", "fault"),
    [
        (_truncated_parquet, "usage.parquet: it is not a complete Parquet file"),
        (_empty_csv, "usage.csv: the file is empty (0 bytes)"),
    ],
)
def test_unreadable_files_are_named_with_the_fault(tmp_path, writer, fault):
    folder = _folder(tmp_path, writer)
    with pytest.raises(DataSourceError, match=fault.replace("(", r"\(").replace(")", r"\)")):
        load_tables(folder)
    with pytest.raises(DataSourceError, match="Could not read"):
        latest_date(folder)
    with pytest.raises(DataSourceError, match="Could not read"):
        load_tables(folder, customer_ids={"C1"})
