"""The inference log: retention, daily compaction to Parquet, one reader for both, no NaN."""

import math
import os
import time
from datetime import date

import pytest

from npsrisk.settings import ConfigError, load_settings
from serving.inference_log import (
    COMPACTED,
    InferenceLog,
    read_inference_log,
    tidy_inference_log,
)


def records(day: str, n: int, start: int = 0) -> list[dict]:
    return [
        {
            "logged_at": f"{day}T10:00:00.{i:03d}+00:00",
            "request_id": f"r{start + i}",
            "endpoint": "/predict",
            "model_name": "npsrisk",
            "model_version": "1",
            "features_as_of": "2025-12-31",
            "customer_id": f"C-{start + i}",
            "features": {"seats": float(i), "ratio": math.nan, "plan_tier": "pro"},
            "outputs": {"churn_probability": 0.1, "predicted_nps": math.inf},
        }
        for i in range(n)
    ]


def write(folder, batches) -> None:
    log = InferenceLog(folder, flush_seconds=0.05)
    for batch in batches:
        log.log(lambda b=batch: b)
    log.close()


def age(folder, seconds: float = 3600) -> None:
    old = time.time() - seconds
    for path in folder.rglob("*.jsonl"):
        os.utime(path, (old, old))


def test_the_log_never_holds_nan_or_infinity(tmp_path):
    write(tmp_path, [records("2026-11-01", 3)])
    text = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert "NaN" not in text and "Infinity" not in text
    frame = read_inference_log(tmp_path)
    assert frame["features"][0]["ratio"] is None and frame["outputs"][0]["predicted_nps"] is None


def test_compaction_keeps_every_record_and_is_idempotent(tmp_path):
    write(tmp_path, [records("2026-11-01", 5), records("2026-11-02", 4, 100)])
    write(tmp_path, [records("2026-11-01", 3, 200)])  # a second worker's file, same day
    before = read_inference_log(tmp_path)
    age(tmp_path)
    done = tidy_inference_log(tmp_path, retention_days=0, today=date(2026, 11, 3))
    assert done["compacted_days"] == 2 and done["compacted_records"] == 12
    day = tmp_path / "date=2026-11-01"
    assert [p.name for p in day.iterdir()] == [COMPACTED]
    after = read_inference_log(tmp_path)
    assert sorted(after["request_id"]) == sorted(before["request_id"])
    assert after["features"].tolist() == before["features"].tolist()
    # Again: nothing to do, nothing duplicated.
    assert tidy_inference_log(tmp_path, 0, today=date(2026, 11, 3))["compacted_days"] == 0
    assert len(read_inference_log(tmp_path)) == 12
    # A late JSONL for a compacted day is merged on the next run.
    write(tmp_path, [records("2026-11-01", 2, 300)])
    age(tmp_path)
    tidy_inference_log(tmp_path, 0, today=date(2026, 11, 3))
    assert len(read_inference_log(tmp_path)) == 14
    assert [p.name for p in day.iterdir()] == [COMPACTED]


def test_today_and_unsettled_days_are_left_alone(tmp_path):
    write(tmp_path, [records("2026-11-03", 2), records("2026-11-02", 2, 10)])
    done = tidy_inference_log(tmp_path, 0, today=date(2026, 11, 3))  # files just written
    assert done["compacted_days"] == 0
    age(tmp_path)
    tidy_inference_log(tmp_path, 0, today=date(2026, 11, 3))
    assert not (tmp_path / "date=2026-11-03" / COMPACTED).exists()
    assert (tmp_path / "date=2026-11-02" / COMPACTED).exists()


def test_retention_deletes_whole_old_days(tmp_path):
    write(tmp_path, [records("2026-01-01", 1), records("2026-10-01", 1, 5)])
    done = tidy_inference_log(tmp_path, retention_days=120, today=date(2026, 11, 3))
    assert done["deleted_days"] == 1
    assert not (tmp_path / "date=2026-01-01").exists()
    assert list(read_inference_log(tmp_path)["customer_id"]) == ["C-5"]
    frame = read_inference_log(tmp_path, since=date(2026, 10, 2))
    assert frame.empty


@pytest.mark.parametrize(
    ("horizon", "days", "ok"), [(90, 119, False), (90, 120, True), (60, 90, True)]
)
def test_retention_never_shorter_than_the_horizon_plus_a_month(tmp_path, horizon, days, ok):
    overrides = {
        "home": tmp_path,
        "training": {"horizon_days": horizon},
        "serving": {"inference_log_retention_days": days},
    }
    if ok:
        assert load_settings(**overrides).serving.inference_log_retention_days == days
    else:
        with pytest.raises(ConfigError, match=r"at least 120"):
            load_settings(**overrides)


def test_a_writer_whose_day_was_compacted_under_it_loses_nothing(tmp_path):
    from serving.inference_log import compact_day

    log = InferenceLog(tmp_path, flush_seconds=0.05)
    log.log(lambda: records("2026-11-01", 4))
    deadline = time.time() + 10
    while log.written < 4 and time.time() < deadline:
        time.sleep(0.02)
    assert compact_day(tmp_path / "date=2026-11-01") == 4  # the open file is now unlinked
    log.log(lambda: records("2026-11-01", 3, 100))
    log.close()
    ids = read_inference_log(tmp_path)["customer_id"].tolist()
    assert sorted(ids) == sorted([f"C-{i}" for i in (0, 1, 2, 3, 100, 101, 102)])
    assert {p.name for p in (tmp_path / "date=2026-11-01").iterdir()} >= {COMPACTED}
    assert len(list((tmp_path / "date=2026-11-01").glob("*.jsonl"))) == 1
