"""Every command on a broken export: a message naming the file and the fault, or the bad rows
set aside with their reason; never a traceback (the CLI run as a user runs it)."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NPSRISK = str(Path(sys.executable).parent / "npsrisk")


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NPSRISK_HOME": str(home)}
    return subprocess.run([NPSRISK, *args], capture_output=True, text=True, env=env, timeout=600)


def _copy_of(demo_path: Path, target: Path) -> Path:
    target.mkdir()
    for path in demo_path.iterdir():
        if path.is_file():
            (target / path.name).symlink_to(path)
    (target / "usage.parquet").unlink()
    return target


def _truncated(demo_path: Path, folder: Path) -> None:
    data = (demo_path / "usage.parquet").read_bytes()
    (folder / "usage.parquet").write_bytes(data[: len(data) // 2])


def _empty_csv(demo_path: Path, folder: Path) -> None:
    (folder / "usage.csv").write_bytes(b"")


COMMANDS = {
    "validate": lambda d, o: ["validate", d],
    "train": lambda d, o: ["train", d],
    "materialize": lambda d, o: ["materialize", d],
    "score": lambda d, o: ["score", d, "--out", str(o / "scores.parquet")],
    "report": lambda d, o: ["report", "themes", d],
}


@pytest.mark.parametrize(
    ("breaker", "fault"),
    [
        (_truncated, "usage.parquet: it is not a complete Parquet file"),
        (_empty_csv, "usage.csv: the file is empty (0 bytes)"),
    ],
)
def test_every_command_names_the_unreadable_file(trained, demo_path, tmp_path, breaker, fault):
    settings, _ = trained
    folder = _copy_of(demo_path, tmp_path / "broken")
    breaker(demo_path, folder)
    for name, command in COMMANDS.items():
        result = run(*command(str(folder), tmp_path), home=settings.home_path)
        output = result.stdout + result.stderr
        assert result.returncode == 2, (name, output)
        assert "Traceback" not in output, (name, output)
        assert fault in result.stderr, (name, output)  # on one line: off a terminal, no wrap


def test_score_sets_implausible_dates_aside(trained, demo_path, tmp_path):
    settings, _ = trained
    folder = _copy_of(demo_path, tmp_path / "dates")
    usage = pq.read_table(demo_path / "usage.parquet")
    usage = usage.cast(usage.schema.set(1, pa.field("timestamp", pa.timestamp("us"))))
    first = usage.slice(0, 2).to_pydict()
    first["timestamp"] = [dt.datetime(9999, 12, 31), dt.datetime(1900, 1, 1)]
    pq.write_table(
        pa.concat_tables([usage, pa.table(first, schema=usage.schema)]), folder / "usage.parquet"
    )

    validated = run("validate", str(folder), home=settings.home_path)
    assert validated.returncode == 0, validated.stderr
    assert "date_out_of_range:timestamp" in validated.stdout

    scored = run("score", str(folder), "--out", str(tmp_path / "s.csv"), home=settings.home_path)
    output = scored.stdout + scored.stderr
    assert scored.returncode == 0 and "Traceback" not in output, output
    assert "features as of 2025-12-31" in scored.stdout  # not 9999
    assert "set aside" in scored.stdout


def test_materialize_reports_set_aside_rows_and_capped_messages_as_score_does(
    trained, demo_path, tmp_path
):
    from features.chunks import active_customer_ids
    from features.loading import latest_date

    settings, _ = trained
    # A copy of the home: materializing must not move the store the session's service serves.
    home = tmp_path / "home"
    shutil.copytree(settings.home_path, home, ignore=shutil.ignore_patterns("run", "inference*"))
    folder = _copy_of(demo_path, tmp_path / "faults")
    (folder / "usage.parquet").symlink_to(demo_path / "usage.parquet")
    (folder / "chats.parquet").unlink()
    when = latest_date(demo_path)
    customer = str(active_customer_ids(demo_path, when).iloc[0])
    chats = pq.read_table(demo_path / "chats.parquet")
    chats = chats.cast(
        chats.schema.set(
            chats.schema.get_field_index("sent_at"), pa.field("sent_at", pa.timestamp("us"))
        )
    )
    row = {
        **chats.slice(0, 1).to_pydict(),
        "customer_id": [customer],
        "author": ["customer"],
        "text": ["the export keeps failing and nobody answers my tickets " * 200],  # 11,200
        "sent_at": [when.to_pydatetime() - dt.timedelta(days=3)],
    }
    beyond = {**row, "sent_at": [dt.datetime(9999, 1, 1)]}  # set aside: date_out_of_range
    pq.write_table(
        pa.concat_tables([chats, *(pa.table(r, schema=chats.schema) for r in (row, beyond))]),
        folder / "chats.parquet",
    )
    uses_text = bool(_champion_plan(home).get("text_themes"))
    for args in (
        ["materialize", str(folder)],
        ["score", str(folder), "--out", str(tmp_path / "s.csv")],
    ):
        result = run(*args, home=home)
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "Traceback" not in output, output
        assert "1 rows of these customers broke the data contract and were set" in output, args
        if uses_text:  # texts are scored, and the long one capped, only for text features
            assert "1 messages were longer than 5,000 characters" in output, (args, output)
        else:
            assert "messages were longer" not in output, (args, output)


def _champion_plan(home) -> dict:
    """The feature plan of the home's champion (text features may have been dropped)."""
    from npsrisk.settings import load_settings
    from serving.state import load_champion

    return load_champion(load_settings(home=home)).bundle.plan
