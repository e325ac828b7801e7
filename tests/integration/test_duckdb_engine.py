"""The DuckDB engine reading the export's files itself gives the in-memory path's answers: the
same rows set aside for the same reasons (Parquet, CSV and a DuckDB file, with contract-
breaking rows), the same features for any pairs, a slice filtered at the scan, and a batch
score equal to scoring the in-memory features."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import assert_same_report
from demo.generator import DemoConfig, generate_demo, write_demo
from features.build import build_features, plan_features
from features.duck import _BackgroundWriter, build_features_duckdb, validate_duckdb
from features.loading import load_tables
from features.validation import ValidatedTables, validate_tables
from npsrisk.settings import load_settings
from training.snapshots import active_customers

pytestmark = pytest.mark.integration

AS_OF = [pd.Timestamp("2024-06-30"), pd.Timestamp("2024-12-31")]


def _export(root: Path, file_format: str) -> Path:
    config = DemoConfig(customers=300, seed=11, months=12, bad_rows=0.03, file_format=file_format)
    out = root / file_format
    out.mkdir()
    write_demo(generate_demo(config), out, config)
    return out


@pytest.fixture(scope="module", params=["csv", "parquet"])
def export(request, tmp_path_factory) -> Path:
    return _export(tmp_path_factory.mktemp("duck_export"), request.param)


@pytest.fixture(scope="module")
def both(export):
    in_memory = validate_tables(load_tables(export))
    on_duckdb = validate_duckdb(export)
    yield in_memory, on_duckdb
    on_duckdb.close()


def test_the_same_rows_are_set_aside_for_the_same_reasons(both):
    in_memory, on_duckdb = both
    assert in_memory.report.rows_set_aside > 0  # the export does break the contract
    assert set(on_duckdb.report.tables) == set(in_memory.report.tables)
    assert_same_report(on_duckdb.report, in_memory.report)
    for name in on_duckdb.checked:
        q_mem, q_duck = in_memory.quarantine[name], on_duckdb.quarantine(name)
        assert q_duck["_source_row"].tolist() == q_mem["_source_row"].tolist(), name
        assert q_duck["_reasons"].tolist() == q_mem["_reasons"].tolist(), name


def test_features_equal_the_in_memory_build(both):
    in_memory, on_duckdb = both
    settings = load_settings()
    plan, _ = plan_features(in_memory, settings.features, settings.data)
    pairs = pd.concat(
        [pd.DataFrame({"customer_id": active_customers(in_memory, d), "as_of": d}) for d in AS_OF]
    ).sample(frac=1.0, random_state=3)  # any order: the result follows the pairs
    expected = build_features(in_memory, pairs, plan)
    got = build_features_duckdb(on_duckdb, pairs, plan)
    assert len(got) == len(expected) > 100
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9, atol=1e-12)


def test_text_features_equal_the_in_memory_build_when_texts_span_many_batches(
    both, export, monkeypatch
):
    """The texts are streamed a batch at a time: every batch must reach the features (a
    write on the streaming connection once ended the stream after the first)."""
    import features.duck as duck
    from features.build import attach_text_signals
    from features.duck import attach_text_signals_duckdb
    from text_analytics.sentiment import SatisfactionModel
    from text_analytics.signals import TextScorer
    from text_analytics.themes import load_taxonomy

    tables, _ = both
    in_memory = ValidatedTables(dict(tables.frames), tables.quarantine, tables.report)
    nps = in_memory.frames["nps_responses"]
    scorer = TextScorer(SatisfactionModel().fit(nps["comment"], nps["score"]), load_taxonomy())
    attach_text_signals(in_memory, scorer)
    settings = load_settings()
    plan, _ = plan_features(in_memory, settings.features, settings.data, scorer.labels)
    assert plan.text_themes
    monkeypatch.setattr(duck, "BATCH_ROWS", 97)  # the chats and tickets span many batches
    on_duckdb = validate_duckdb(export)
    try:
        attach_text_signals_duckdb(on_duckdb, scorer)
        pairs = pd.DataFrame(
            {"customer_id": active_customers(in_memory, AS_OF[1]), "as_of": AS_OF[1]}
        )
        expected = build_features(in_memory, pairs, plan)
        got = build_features_duckdb(on_duckdb, pairs, plan)
    finally:
        on_duckdb.close()
    assert expected["text_messages_90d"].sum() > 10 * 97
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9, atol=1e-12)


def test_a_slice_is_filtered_at_the_scan(export):
    in_memory = validate_tables(load_tables(export))
    some = set(in_memory["customers"]["customer_id"].iloc[:40])
    expected = validate_tables(load_tables(export, customer_ids=some))
    sliced = validate_duckdb(export, customer_ids=some)
    try:
        for name in sliced.checked:
            ids = sliced.raw.execute(
                f'SELECT DISTINCT customer_id FROM "{sliced.checked[name]}"'
            ).fetchall()
            assert {i for (i,) in ids if i is not None} <= some, name
            got, want = sliced.report.tables[name], expected.report.tables[name]
            assert (got.rows_read, got.reasons) == (want.rows_read, want.reasons), name
    finally:
        sliced.close()
    assert not sliced.workdir.exists()  # its temporary folder is removed


def test_a_duckdb_file_is_read_and_checked_the_same(export, tmp_path):
    raw = load_tables(export)
    path = tmp_path / "export.duckdb"
    con = duckdb.connect(str(path))
    for name, frame in raw.frames.items():
        con.register("frame", frame)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
        con.unregister("frame")
    con.close()
    expected = validate_tables(load_tables(path)).report
    tables = validate_duckdb(path)
    try:
        for name, want in expected.tables.items():
            got = tables.report.tables[name]
            assert (got.rows_read, got.rows_kept, got.reasons) == (
                want.rows_read,
                want.rows_kept,
                want.reasons,
            ), name
    finally:
        tables.close()


def test_background_writer_writes_in_order_and_raises_a_failed_write(tmp_path):
    path = tmp_path / "ok.parquet"
    with _BackgroundWriter(path) as writer:
        for start in range(0, 50, 10):
            writer.write(pa.table({"n": list(range(start, start + 10))}))
    assert pq.read_table(path)["n"].to_pylist() == list(range(50))

    # A batch of another shape cannot be appended: the error reaches the caller, the thread
    # ends and the file is closed (no hang, no half-written file left open).
    writer = _BackgroundWriter(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="schema"), writer:
        writer.write(pa.table({"n": [1, 2]}))
        writer.write(pa.table({"other": ["x"]}))
        for _ in range(5):
            writer.write(pa.table({"n": [3]}))
    assert not writer._thread.is_alive()
