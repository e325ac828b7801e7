"""Survey schedules (customer_id, survey_date) from CSV or Parquet, bad rows set aside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd


class ScheduleError(ValueError):
    """A schedule file that cannot be used at all; the message says what to fix."""


@dataclass
class Schedule:
    rows: list[tuple[str, date]]
    set_aside: pd.DataFrame  # the bad rows with a `reason` column

    @property
    def customer_ids(self) -> list[str]:
        return [c for c, _ in self.rows]


def read_schedule(path: Path) -> Schedule:
    """Rows in file order; a row without an id or with an unparsable date is set aside."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ScheduleError(f"schedule {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise ScheduleError(f"schedule {path.name}: use a .csv or .parquet file")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = {"customer_id", "survey_date"} - set(frame.columns)
    if missing:
        raise ScheduleError(
            f"schedule {path.name} needs columns customer_id and survey_date "
            f"(missing: {', '.join(sorted(missing))})"
        )
    return parse_schedule(frame)


def parse_schedule(frame: pd.DataFrame) -> Schedule:
    ids = frame["customer_id"].astype("string").str.strip()
    dates = pd.to_datetime(frame["survey_date"], errors="coerce", utc=True)
    reason = pd.Series("", index=frame.index, dtype=object)
    reason[ids.isna() | (ids == "")] = "missing customer_id"
    reason[(reason == "") & dates.isna()] = "survey_date is not a date"
    bad = reason != ""
    good = frame.index[~bad]
    rows = [(str(ids[i]), dates[i].date()) for i in good]
    set_aside = frame[bad].assign(reason=reason[bad])
    if not rows:
        raise ScheduleError(
            f"no usable rows in the schedule ({int(bad.sum())} set aside: "
            f"{', '.join(sorted(set(reason[bad])))})"
        )
    return Schedule(rows, set_aside)


def schedule_from_surveys(surveys: pd.DataFrame, survey_date: date | None = None) -> Schedule:
    """The wave of the contract's ``surveys`` table (invitations sent, already validated):
    the customers invited on ``survey_date``, by default on the latest day invitations went
    out. ``set_aside`` is empty: the contract's validation set bad rows aside already."""
    if surveys is None or surveys.empty:
        raise ScheduleError("the surveys table holds no invitations")
    day = pd.to_datetime(surveys["sent_at"], utc=True).dt.date
    wanted = survey_date or max(day)
    ids = surveys.loc[(day == wanted).to_numpy(), "customer_id"].astype(str)
    if ids.empty:
        raise ScheduleError(
            f"no invitations were sent on {wanted} in the surveys table "
            f"(it holds {min(day)} to {max(day)})"
        )
    rows = [(cid, wanted) for cid in dict.fromkeys(ids)]
    return Schedule(rows, surveys.iloc[:0].assign(reason=[]))
